"""The local health page, ``/healthz`` and ``/metrics``, served on ``[health] listen``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from agent.health.auth import REALM, Credentials
from agent.health.config import HealthConfig
from agent.health.metrics import build_registry
from agent.health.page import render_page
from agent.health.status import as_dict, assess
from agent.text import printable

log = logging.getLogger(__name__)

#: Longest a stopping agent waits for open page and scrape requests to finish.
SHUTDOWN_SECONDS = 2

Endpoint = Callable[[Request], Awaitable[Response]]


def build_app(
    providers: Mapping[str, Callable[[], Any]],
    identity: Mapping[str, str],
    credentials: Credentials | None = None,
    disabled: Mapping[str, str] | None = None,
) -> Starlette:
    """The ASGI app; ``providers`` maps component names to their ``stats`` callables.

    With ``credentials`` that require it, the page and ``/metrics`` answer 401 without them;
    ``/healthz`` stays open for load balancers and watchdogs but then tells a stranger only the
    verdict and its reasons. ``disabled`` names the sources configured but not run, and why.
    """
    disabled = dict(disabled or {})
    registry = build_registry(providers)
    guard = credentials or Credentials()

    def allowed(request: Request) -> bool:
        return guard.allow(request.headers.get("authorization"))

    def guarded(endpoint: Endpoint) -> Endpoint:
        async def checked(request: Request) -> Response:
            if not allowed(request):
                return PlainTextResponse(
                    "authentication required\n",
                    status_code=401,
                    headers={"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'},
                )
            return await endpoint(request)

        return checked

    async def healthz(request: Request) -> Response:
        stats = {name: provider() for name, provider in providers.items()}
        health = assess(stats)
        body: dict[str, Any] = {"status": health.status, "reasons": list(health.reasons)}
        if allowed(request):
            body.update(identity)
            body["components"] = {name: as_dict(s) for name, s in stats.items()}
            if disabled:
                body["disabled_sources"] = disabled
        return JSONResponse(_printable(body), status_code=503 if health.status == "red" else 200)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def page(request: Request) -> Response:
        stats = {name: provider() for name, provider in providers.items()}
        html = render_page(assess(stats), stats, identity, datetime.now(UTC), disabled)
        return HTMLResponse(printable(html), headers={"Cache-Control": "no-store"})

    return Starlette(
        routes=[
            Route("/", guarded(page)),
            Route("/healthz", healthz),
            Route("/metrics", guarded(metrics)),
        ]
    )


def _printable(value: Any) -> Any:
    """A JSON-ready value with every string printable: figures may quote received text."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, list):
        return [_printable(v) for v in value]
    if isinstance(value, dict):
        return {printable(str(k)): _printable(v) for k, v in value.items()}
    return value


class HealthServer:
    """Serves the health routes on ``[health] listen`` until cancelled.

    Built before the agent starts its tasks, so an unreadable token or password file stops the
    start with a configuration error that names the key.
    """

    def __init__(
        self,
        config: HealthConfig,
        providers: Mapping[str, Callable[[], Any]],
        identity: Mapping[str, str],
        disabled: Mapping[str, str] | None = None,
    ) -> None:
        self._listen = config.listen
        credentials = Credentials.from_config(config)
        self.app = build_app(providers, identity, credentials, disabled)
        self._guarded = credentials.required

    async def serve(self) -> None:
        """Serve until cancelled."""
        host, _, port = self._listen.rpartition(":")
        config = uvicorn.Config(
            self.app,
            host=host.strip("[]"),
            port=int(port),
            log_level="warning",
            lifespan="off",
            access_log=False,
            timeout_graceful_shutdown=SHUTDOWN_SECONDS,
        )
        server = _EmbeddedServer(config)
        log.info(
            "health page on http://%s/%s",
            self._listen,
            " (token or basic auth required)" if self._guarded else "",
        )
        serving = asyncio.ensure_future(server.serve())
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Let uvicorn close its listening socket and open connections before going.
            server.should_exit = True
            await serving
            raise


class _EmbeddedServer(uvicorn.Server):
    """uvicorn that leaves signal handling to the agent's own loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
