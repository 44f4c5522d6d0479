"""Composition root: builds the relay's store and HTTP app from settings and serves them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import uvicorn
from fastapi import FastAPI

from cloud_relay import __version__
from cloud_relay.config import RelaySettings, ServerConfig, StoreConfig
from cloud_relay.errors import RelayError
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxStore
from cloud_relay.ingest.slow_clients import deadline_protocol
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.stats import PostingStats
from cloud_relay.posting.store import PostingStore
from cloud_relay.posting.worker import PostingWorker
from cloud_relay.reconcile.service import start_upkeep
from runtime.notify import Notifier
from runtime.supervisor import Supervisor

log = logging.getLogger(__name__)

#: How long in-flight requests may take to finish after SIGTERM before connections are cut.
SHUTDOWN_GRACE_SECONDS = 30


@contextlib.asynccontextmanager
async def opened_store(config: StoreConfig) -> AsyncIterator[InboxStore]:
    """The configured inbox, open for the duration of the block."""
    store = open_inbox(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def opened_posting_store(config: StoreConfig) -> AsyncIterator[PostingStore]:
    """The Odoo writer's state (in the inbox's database), open for the block."""
    store = open_posting_store(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


class RelayServer(uvicorn.Server):
    """uvicorn that leaves signal handling to its host (see :func:`run_relay`).

    ``on_started`` runs once the listener accepts requests, ``on_stopping`` when shutdown
    begins: the systemd notifications READY=1 and STOPPING=1.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        on_started: Callable[[], None] | None = None,
        on_stopping: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._on_started = on_started
        self._on_stopping = on_stopping

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._on_stopping is not None:
            self._on_stopping()
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: object, listen: str, server: ServerConfig | None = None) -> uvicorn.Config:
    """uvicorn settings for serving ``app`` on ``host:port``, logging through ours, with the
    slow-client deadlines and connection cap of ``server`` (the defaults when None)."""
    server = server or ServerConfig()
    host, _, port = listen.rpartition(":")
    return uvicorn.Config(
        app,  # type: ignore[arg-type]
        host=host.strip("[]"),
        port=int(port),
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
        http=deadline_protocol(server.header_timeout_seconds, server.body_timeout_seconds),
        timeout_keep_alive=server.keep_alive_seconds,
        limit_concurrency=server.max_connections,
    )


def bind_socket(listen: str) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``[v6]:port`` too); raises ``OSError``.

    Created with an explicit ``IPPROTO_TCP``: asyncio turns Nagle off (``TCP_NODELAY``) only
    on sockets that say so, and with Nagle on every keep-alive answer waits ~40 ms for the
    client's delayed ACK.
    """
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, int(port)))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


async def run_relay(
    settings: RelaySettings,
    *,
    install_signal_handlers: bool = True,
    notifier: Notifier | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation): finish in-flight requests, close the store.

    Raises ``OSError`` when the listen address cannot be bound and
    :class:`~cloud_relay.errors.RelayError` when the store cannot be opened. ``notifier`` (by
    default from ``NOTIFY_SOCKET``) hears READY=1 once requests are served, watchdog pings from
    the event loop, and STOPPING=1.
    """
    notifier = notifier or Notifier()
    listen = settings.server.listen
    settings.check_secrets()
    token = settings.admin.resolve_token()
    if token is None:
        log.warning("no admin token configured: the admin API answers 503")
    async with (
        opened_store(settings.store) as store,
        opened_posting_store(settings.store) as posting,
        contextlib.AsyncExitStack() as stack,
    ):
        writer: PostingWorker | None = None
        supervisor = Supervisor("Odoo writer")
        writer_stats: Callable[[], PostingStats] | None = None
        if settings.odoo is not None and settings.writer.enabled:
            writer = PostingWorker(store, posting, settings.odoo, settings.writer)
            writer_stats = supervised_stats(writer, supervisor)
        else:
            log.warning("no [odoo] section, or [writer] enabled = false: nothing goes to Odoo")
        metrics = RelayMetrics()
        if writer_stats is not None:
            metrics.watch_writer(writer_stats)
        app = build_app(
            store,
            settings.server,
            admin_token=token,
            metrics=metrics,
            posting_store=posting,
            on_stored=writer.wake if writer is not None else None,
            writer_stats=writer_stats,
            metrics_token=settings.server.resolve_metrics_token(),
            admin_token_key="token_file" if settings.admin.token_file is not None else "token",
            writer_off="no [odoo] section" if settings.odoo is None else "[writer] enabled = false",
        )
        server = RelayServer(
            uvicorn_config(app, listen, settings.server),
            on_started=lambda: notifier.ready(f"serving on {listen}"),
            on_stopping=lambda: notifier.stopping("stopping: finishing in-flight requests"),
        )
        bom_job = await _start_bom(settings, stack, app, store, metrics)
        sock = bind_socket(listen)
        probe = health_probe(store, writer)
        what = "inbox" if writer is None else "inbox or Odoo writer"
        upkeep = None
        try:
            upkeep = await start_upkeep(settings, store, posting, metrics, app, token)
            async with asyncio.TaskGroup() as tasks:
                background = [
                    tasks.create_task(notifier.run_watchdog(probe, what=what), name="watchdog")
                ]
                if writer is not None:
                    background.append(
                        tasks.create_task(supervisor.run(writer.run), name="odoo writer")
                    )
                if bom_job is not None:
                    bom_supervisor = Supervisor("BOM publishing")
                    background.append(
                        tasks.create_task(bom_supervisor.run(bom_job), name="bom publishing")
                    )
                try:
                    if install_signal_handlers:
                        _stop_on_signals(server)
                    log.info(
                        "cloud relay %s listening on %s (store: %s)",
                        __version__,
                        settings.server.listen,
                        settings.store.url.split(":", 1)[0],
                    )
                    await server.serve(sockets=[sock])
                finally:
                    notifier.stopping("stopping: closing the store")
                    for task in background:
                        task.cancel()
        finally:
            sock.close()
            if upkeep is not None:
                await upkeep.stop()
    log.info("cloud relay stopped")


def supervised_stats(writer: PostingWorker, supervisor: Supervisor) -> Callable[[], PostingStats]:
    """The writer's ``stats()`` with its supervisor's restarts."""

    def stats() -> PostingStats:
        restarts = supervisor.stats()
        return dataclasses.replace(
            writer.stats(), restarts=restarts.restarts, last_crash=restarts.last_crash
        )

    return stats


def health_probe(store: InboxStore, writer: PostingWorker | None) -> Callable[[], Awaitable[bool]]:
    """What the watchdog asks before each ping: the inbox answers and the writer (when there
    is one) made progress or reported itself well within ``[writer] stall_seconds``."""

    async def probe() -> bool:
        if writer is not None and not writer.healthy():
            return False
        try:
            await store.ping()
        except RelayError:
            return False
        return True

    return probe


def _stop_on_signals(server: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        if server.should_exit and sig == signal.SIGINT:
            server.force_exit = True
        log.info("%s: finishing in-flight requests, then stopping", sig.name)
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)


async def _start_bom(
    settings: RelaySettings,
    stack: contextlib.AsyncExitStack,
    app: FastAPI,
    inbox: InboxStore,
    metrics: RelayMetrics,
) -> Callable[[], Awaitable[None]] | None:
    """``POST /v1/boms``, and the BOM publishing job to run (its store closed by ``stack``)."""
    if settings.odoo is None or not settings.bom.enabled:
        return None
    from cloud_relay.masterdata.admin import BomAdminPage
    from cloud_relay.masterdata.api import BomCollector, BomEndpoint, install_bom_api
    from cloud_relay.masterdata.factory import opened_bom_store
    from cloud_relay.masterdata.job import BomPublishingJob

    bom_store = await stack.enter_async_context(opened_bom_store(settings.store))
    job = BomPublishingJob(bom_store, settings.odoo, settings.bom)
    install_bom_api(app, BomEndpoint(inbox, bom_store, settings, metrics))
    BomAdminPage(bom_store, settings.bom, settings.admin.resolve_token()).install(app)
    metrics.registry.register(BomCollector(job.stats))
    return job.run
