"""Fixtures for relay tests: a real inbox (SQLite and PostgreSQL) and a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from cloud_relay.app import RelayServer, bind_socket, uvicorn_config
from cloud_relay.config import ServerConfig, StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxStore
from cloud_relay.metrics import RelayMetrics
from tests.cloud_relay.support import wait_until
from tests.fixtures.postgres import postgres_url  # noqa: F401  (fixture)

ADMIN_TOKEN = "test-admin-token-0123456789"
#: Small limits, so size tests send little.
TEST_SERVER = ServerConfig(max_body_bytes=256 * 1024, max_decoded_bytes=1024 * 1024)


@dataclass
class Relay:
    """A relay serving on loopback, with the store and metrics behind it."""

    url: str
    store: InboxStore
    metrics: RelayMetrics
    client: httpx.AsyncClient


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh, empty inbox of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/inbox.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def inbox(store_url: str) -> AsyncIterator[InboxStore]:
    store = open_inbox(StoreConfig(url=store_url, pool_size=4))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def serve(app: object, config: ServerConfig | None = None) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port (with the deadlines and connection
    cap of ``config``); yields its base URL."""
    sock = bind_socket("127.0.0.1:0")
    port = sock.getsockname()[1]
    server = RelayServer(uvicorn_config(app, f"127.0.0.1:{port}", config))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await wait_until(lambda: server.started or task.done(), "uvicorn to start")
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


StartRelay = Callable[..., Awaitable[Relay]]


@pytest.fixture
async def start_relay(inbox: InboxStore) -> AsyncIterator[StartRelay]:
    """Start a relay on the test inbox with the given server settings and admin token."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            server: ServerConfig = TEST_SERVER, admin_token: str | None = ADMIN_TOKEN
        ) -> Relay:
            metrics = RelayMetrics()
            app = build_app(inbox, server, admin_token=admin_token, metrics=metrics)
            url = await stack.enter_async_context(serve(app, server))
            client = await stack.enter_async_context(httpx.AsyncClient(timeout=30))
            return Relay(url=url, store=inbox, metrics=metrics, client=client)

        yield start


@pytest.fixture
async def relay(start_relay: StartRelay) -> Relay:
    """A relay with the test limits and admin token."""
    return await start_relay()
