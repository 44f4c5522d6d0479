"""The relay's HTTP application: batch ingest, health, metrics, the admin API and page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud_relay import __version__
from cloud_relay.admin.api import install_admin_api
from cloud_relay.admin.deadletters import deadletters_router
from cloud_relay.admin.page import AdminPage
from cloud_relay.admin.throttle import GuessThrottle
from cloud_relay.config import ServerConfig
from cloud_relay.errors import RelayError, TransientError
from cloud_relay.inbox.store import InboxStore
from cloud_relay.ingest.batches import BatchEndpoint
from cloud_relay.ingest.guard import OperationsGuard
from cloud_relay.ingest.probe import install_probe
from cloud_relay.ingest.schemas import (
    BATCH_OPENAPI,
    BATCH_RESPONSES,
    HealthResponse,
    WriterHealth,
)
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.store import PostingStore
from wire.batch import BATCH_PATH

if TYPE_CHECKING:
    from cloud_relay.posting.stats import PostingStats

log = logging.getLogger(__name__)

_DESCRIPTION = """Receives signed batches of plant-floor events from edge gateways.

Batches are verified (RFC 9421 HTTP Message Signatures, Ed25519, with an RFC 9530
Content-Digest of the body as sent) before anything else is read from them, and acknowledged
only once stored. `Content-Encoding` may be `zstd`, `gzip` or `identity`; any other is refused
with 415.
"""


def build_app(
    store: InboxStore,
    server: ServerConfig,
    *,
    admin_token: str | None,
    metrics: RelayMetrics | None = None,
    posting_store: PostingStore | None = None,
    on_stored: Callable[[], None] | None = None,
    writer_stats: Callable[[], PostingStats] | None = None,
    metrics_token: str | None = None,
    admin_token_key: str = "token_file",
    writer_off: str = "no [odoo] section",
) -> FastAPI:
    """The ASGI app of one replica; the stores are opened and closed by the caller.

    Without ``posting_store`` (no Odoo writer configured) the dead-letter routes answer 503.
    ``on_stored`` is called after a batch stored new events (it wakes the Odoo writer);
    ``writer_stats`` is the writer's ``stats()``, for the admin page's status. Beyond
    loopback ``/metrics`` and ``/openapi.json`` need ``metrics_token`` or the admin token.
    ``writer_stats`` is the writer's ``stats()``, for the admin page's status; without it,
    ``writer_off`` says why nothing is posted. ``admin_token_key`` (``token`` or ``token_file``)
    is where the admin token comes from, for the login form.
    """
    metrics = metrics or RelayMetrics()
    metrics.watch_inbox(store.stats)
    app = FastAPI(
        title="cloud relay",
        version=__version__,
        description=_DESCRIPTION,
        docs_url=None,
        redoc_url=None,
    )
    batches = BatchEndpoint(store, server, metrics, on_stored)

    async def post_batch(request: Request) -> Response:
        return await batches.handle(request)

    app.add_api_route(
        BATCH_PATH,
        post_batch,
        methods=["POST"],
        summary="Upload a signed batch of events",
        response_model=None,
        responses=BATCH_RESPONSES,
        openapi_extra=BATCH_OPENAPI,
        tags=["ingest"],
    )
    install_probe(app, store, server, metrics)

    @app.get(
        "/healthz",
        summary="Whether the inbox is reachable",
        tags=["operations"],
        response_model=HealthResponse,
        responses={503: {"model": HealthResponse, "description": "The inbox is unreachable."}},
    )
    async def healthz() -> JSONResponse:
        writer = None
        if writer_stats is not None:
            stats = writer_stats()
            writer = WriterHealth(
                state=stats.state,
                healthy=stats.healthy,
                restarts=stats.restarts,
                last_crash=stats.last_crash,
            )
        try:
            with metrics.timing("ping"):
                await store.ping()
        except RelayError as exc:
            log.warning("health check: inbox unreachable: %s", exc, extra={"error": str(exc)})
            body = HealthResponse(status="unavailable", version=__version__, writer=writer)
            return JSONResponse(
                body.model_dump(exclude={"writer"} if writer is None else None), 503
            )
        body = HealthResponse(status="ok", version=__version__, writer=writer)
        return JSONResponse(body.model_dump(exclude={"writer"} if writer is None else None))

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        tags=["operations"],
        response_class=Response,
        responses={
            200: {
                "description": "Prometheus text exposition.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def prometheus_metrics() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    throttle = GuessThrottle()
    # Admin routes added later (reconciliation) count guesses with the same throttle.
    app.state.admin_throttle = throttle
    install_admin_api(
        app,
        store,
        admin_token,
        routers=[deadletters_router(lambda: posting_store)],
        throttle=throttle,
    )
    AdminPage(
        store,
        admin_token,
        posting_store=posting_store,
        metrics=metrics,
        writer_stats=writer_stats,
        throttle=throttle,
        behind_tls_proxy=server.cookies_secure,
        token_key=admin_token_key,
        writer_off=writer_off,
    ).install(app)
    tokens = tuple(token for token in (metrics_token, admin_token) if token)
    app.add_middleware(
        OperationsGuard, required=not server.on_loopback, tokens=tokens, throttle=throttle
    )

    async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
        level = logging.WARNING if isinstance(exc, TransientError) else logging.ERROR
        log.log(level, "inbox unavailable: %s", exc, extra={"error": str(exc)})
        return JSONResponse(
            {"error": "the inbox is unavailable; retry later"},
            503,
            headers={"Retry-After": str(server.retry_after_seconds)},
        )

    app.add_exception_handler(RelayError, store_unavailable)
    app.state.metrics = metrics
    return app
