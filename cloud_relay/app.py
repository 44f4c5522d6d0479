"""Composition root: builds the relay's store and HTTP app from settings and serves them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn

from cloud_relay import __version__
from cloud_relay.config import RelaySettings, StoreConfig
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxStore
from cloud_relay.ingest.app import build_app
from cloud_relay.metrics import RelayMetrics
from cloud_relay.notify import Notifier
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.store import PostingStore
from cloud_relay.posting.worker import OdooWriter
from cloud_relay.reconcile.service import start_upkeep

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


def uvicorn_config(app: object, listen: str) -> uvicorn.Config:
    """uvicorn settings for serving ``app`` on ``host:port``, logging through ours."""
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
    token = settings.admin.resolve_token()
    if token is None:
        log.warning("no admin token configured: the admin API answers 503")
    async with (
        opened_store(settings.store) as store,
        opened_posting_store(settings.store) as posting,
    ):
        writer: OdooWriter | None = None
        if settings.odoo is not None and settings.writer.enabled:
            writer = OdooWriter(store, posting, settings.odoo, settings.writer)
        else:
            log.warning("no [odoo] section, or [writer] enabled = false: nothing goes to Odoo")
        metrics = RelayMetrics()
        if writer is not None:
            metrics.watch_writer(writer.stats)
        app = build_app(
            store,
            settings.server,
            admin_token=token,
            metrics=metrics,
            posting_store=posting,
            on_stored=writer.wake if writer is not None else None,
            writer_stats=writer.stats if writer is not None else None,
        )
        server = RelayServer(
            uvicorn_config(app, listen),
            on_started=lambda: notifier.ready(f"serving on {listen}"),
            on_stopping=lambda: notifier.stopping("stopping: finishing in-flight requests"),
        )
        sock = bind_socket(listen)
        writer_task = asyncio.create_task(writer.run()) if writer is not None else None
        watchdog = asyncio.create_task(notifier.run_watchdog(), name="watchdog")
        upkeep = None
        try:
            upkeep = await start_upkeep(settings, store, posting, metrics, app, token)
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
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            sock.close()
            if writer_task is not None:
                writer_task.cancel()
                await asyncio.gather(writer_task, return_exceptions=True)
            if upkeep is not None:
                await upkeep.stop()
    log.info("cloud relay stopped")


def _stop_on_signals(server: uvicorn.Server) -> None:
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        if server.should_exit and sig == signal.SIGINT:
            server.force_exit = True
        log.info("%s: finishing in-flight requests, then stopping", sig.name)
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
