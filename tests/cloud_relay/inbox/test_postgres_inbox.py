"""What only the PostgreSQL inbox does: losing the server, racing replicas at start, URLs."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit

import asyncpg
import pytest

from cloud_relay.errors import ConfigError, RelayError, TransientError
from cloud_relay.inbox.postgres import PostgresInbox, redact_url
from cloud_relay.inbox.store import StoreResult
from tests.cloud_relay.inbox.harness import EventMaker
from tests.fixtures.postgres import database_url, postgres_url

__all__ = ["postgres_url"]

WAIT_SECONDS = 20.0


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class TcpProxy:
    """Forwards a loopback port to the PostgreSQL server, and can cut every connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the port and reset every forwarded connection."""
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, server_w}
        try:
            await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        finally:
            self._writers -= {client_w, server_w}

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            with contextlib.suppress(OSError):  # the other side was cut: this direction ends too
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
        finally:
            writer.transport.abort()


async def ping_until_ok(inbox: PostgresInbox) -> None:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            try:
                await inbox.ping()
                return
            except TransientError:
                await asyncio.sleep(0.05)


async def test_unreachable_server_is_transient() -> None:
    port = closed_port()
    inbox = PostgresInbox(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    with pytest.raises(TransientError, match=f":{port}/"):
        await inbox.open()
    assert inbox.stats().transient_errors == 1


async def test_losing_the_server_is_transient_and_recovers(
    postgres_url: str, events: EventMaker
) -> None:
    target = urlsplit(postgres_url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    await proxy.start()
    proxied = target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}").geturl()
    inbox = PostgresInbox(proxied, pool_size=2)
    await inbox.open()
    try:
        await inbox.store_batch("gw-1", "k", 1, events.run(1, 5))
        await proxy.stop()  # the port is closed now
        with pytest.raises(TransientError):
            await inbox.ping()
        with pytest.raises(TransientError):
            await inbox.store_batch("gw-1", "k", 6, events.run(6, 10))
        with pytest.raises(TransientError):
            await inbox.ping()
        assert inbox.stats().transient_errors >= 3

        await proxy.start()  # same port again
        await ping_until_ok(inbox)
        assert await inbox.store_batch("gw-1", "k", 6, events.run(6, 10)) == StoreResult(10, 5)
    finally:
        await inbox.close()
        await proxy.stop()


async def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    stores = [PostgresInbox(postgres_url, pool_size=1) for _ in range(4)]
    try:
        await asyncio.gather(*(s.open() for s in stores))
        for store in stores:
            await store.ping()
    finally:
        for store in stores:
            await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        versions = [row["version"] for row in await conn.fetch("SELECT version FROM inbox_schema")]
        assert versions == [1, 2]
    finally:
        await conn.close()


async def test_schema_newer_than_the_code_is_refused(postgres_url: str) -> None:
    inbox = PostgresInbox(postgres_url, pool_size=1)
    await inbox.open()
    await inbox.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        await conn.execute("INSERT INTO inbox_schema (version) VALUES (99)")
    finally:
        await conn.close()
    with pytest.raises(RelayError, match="schema version 99"):
        await PostgresInbox(postgres_url, pool_size=1).open()


async def test_missing_database_is_a_config_error_without_the_password() -> None:
    missing = urlsplit(database_url("relay_test_does_not_exist"))
    url = missing._replace(netloc=f"{missing.username}:sekret@{missing.hostname}:{missing.port}")
    with pytest.raises(ConfigError, match="relay_test_does_not_exist") as caught:
        await PostgresInbox(url.geturl()).open()
    assert "sekret" not in str(caught.value)


def test_redact_url() -> None:
    assert redact_url("postgresql://u:pw@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert redact_url("postgresql://u@db/x") == "postgresql://u@db/x"
    assert redact_url("postgres://:pw@db/x") == "postgres://:***@db/x"
