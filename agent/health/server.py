"""The local health page, ``/healthz`` and ``/metrics``, served on ``[health] listen``."""

from __future__ import annotations

import contextlib
import html
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from agent.health.metrics import build_registry
from agent.health.status import Health, as_dict, assess

log = logging.getLogger(__name__)

_COLOURS = {"green": "#1b7f3b", "amber": "#b86e00", "red": "#b00020"}


def build_app(providers: Mapping[str, Callable[[], Any]], identity: Mapping[str, str]) -> Starlette:
    """The ASGI app; ``providers`` maps component names to their ``stats`` callables."""
    registry = build_registry(providers)

    def snapshot() -> tuple[Health, dict[str, Any]]:
        stats = {name: provider() for name, provider in providers.items()}
        return assess(stats), {name: as_dict(s) for name, s in stats.items()}

    async def healthz(request: Request) -> Response:
        health, components = snapshot()
        body = {
            "status": health.status,
            "reasons": list(health.reasons),
            **identity,
            "components": components,
        }
        return JSONResponse(body, status_code=503 if health.status == "red" else 200)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def page(request: Request) -> Response:
        health, components = snapshot()
        return HTMLResponse(_render(health, components, identity))

    return Starlette(
        routes=[
            Route("/", page),
            Route("/healthz", healthz),
            Route("/metrics", metrics),
        ]
    )


def _render(
    health: Health, components: dict[str, dict[str, Any]], identity: Mapping[str, str]
) -> str:
    esc = html.escape
    reasons = "".join(f"<li>{esc(r)}</li>" for r in health.reasons)
    ident = " · ".join(f"{esc(k)} <b>{esc(v)}</b>" for k, v in identity.items())
    sections = []
    for name, fields in components.items():
        rows = "".join(
            f"<tr><th>{esc(k)}</th><td>{esc(v if isinstance(v, str) else json.dumps(v))}</td></tr>"
            for k, v in fields.items()
        )
        sections.append(f"<section><h2>{esc(name)}</h2><table>{rows}</table></section>")
    colour = _COLOURS[health.status]
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='refresh' content='5'><title>edge agent: "
        f"{health.status}</title><style>body{{font-family:sans-serif;margin:1.5em}}"
        f".status{{background:{colour};color:#fff;padding:.6em 1em;font-size:1.4em}}"
        "th{text-align:left;padding-right:1em;font-weight:normal;color:#555}"
        "section{display:inline-block;vertical-align:top;margin:1em 2em 0 0}</style></head><body>"
        f"<div class='status'>{health.status.upper()}<ul>{reasons}</ul></div>"
        f"<p>{ident}</p>{''.join(sections)}</body></html>"
    )


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signal handling to the agent's own loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_health(
    listen: str, providers: Mapping[str, Callable[[], Any]], identity: Mapping[str, str]
) -> None:
    """Serve until cancelled."""
    host, _, port = listen.rpartition(":")
    config = uvicorn.Config(
        build_app(providers, identity),
        host=host.strip("[]"),
        port=int(port),
        log_level="warning",
        lifespan="off",
        access_log=False,
    )
    server = _EmbeddedServer(config)
    log.info("health page on http://%s/", listen)
    try:
        await server.serve()
    finally:
        server.should_exit = True
