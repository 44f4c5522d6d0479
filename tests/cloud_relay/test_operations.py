"""/healthz, /metrics, and 503 answers when the inbox goes away under a running relay."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloud_relay.config import StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER, Relay, serve
from tests.cloud_relay.support import batch_body, register, upload
from tests.fixtures.postgres import ADMIN_URL


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_healthz_answers_ok(relay: Relay) -> None:
    response = await relay.client.get(relay.url + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_metrics_count_outcomes_and_gateway_lag(relay: Relay) -> None:
    gateway = await register(relay.store, "line-1")
    await upload(relay.client, relay.url, gateway, batch_body("line-1", 1, 3))
    await upload(relay.client, relay.url, gateway, batch_body("line-1", 1, 3))  # replay
    await upload(relay.client, relay.url, gateway, batch_body("line-1", 7, 2))  # gap
    await upload(relay.client, relay.url, gateway, batch_body("line-1", 4, 1), created=1)

    response = await relay.client.get(relay.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    values = samples(response.text)
    assert values[("cloud_relay_batches_accepted_total", ())] == 2
    assert values[("cloud_relay_events_accepted_total", ())] == 6
    assert values[("cloud_relay_events_stored_total", ())] == 3
    assert values[("cloud_relay_batches_refused_total", (("reason", "sequence_gap"),))] == 1
    assert values[("cloud_relay_events_refused_total", (("reason", "sequence_gap"),))] == 2
    assert values[("cloud_relay_batches_refused_total", (("reason", "stale_signature"),))] == 1
    assert values[("cloud_relay_batches_refused_total", (("reason", "unknown_key"),))] == 0
    gw = (("gateway_id", "line-1"),)
    assert values[("cloud_relay_gateway_acked_seq", gw)] == 3
    assert values[("cloud_relay_gateway_last_seq", gw)] == 8
    assert values[("cloud_relay_gateway_lag_events", gw)] == 5
    assert values[("cloud_relay_store_seconds_count", (("operation", "store_batch"),))] == 3
    assert values[("cloud_relay_inbox_batches_total", ())] == 2
    assert values[("cloud_relay_inbox_gaps_total", ())] == 1


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_dropped_database_answers_503_and_recovers_nothing_wrongly(
    store_url: str, relay: Relay
) -> None:
    gateway = await register(relay.store, "line-1")
    ok = await upload(relay.client, relay.url, gateway, batch_body("line-1", 1, 2))
    assert ok.status_code == 200

    name = store_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()

    response = await upload(relay.client, relay.url, gateway, batch_body("line-1", 3, 2))
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(TEST_SERVER.retry_after_seconds)
    health = await relay.client.get(relay.url + "/healthz")
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"
    admin_answer = await relay.client.get(
        relay.url + "/v1/gateways", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert admin_answer.status_code == 503
    assert "retry-after" in admin_answer.headers
    assert relay.metrics.stats().refused_by_reason["store_unavailable"] >= 1


class Forwarder:
    """A TCP forwarder to PostgreSQL that can be cut (port closed, connections reset)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


@pytest.fixture
async def forwarder() -> AsyncIterator[Forwarder]:
    target = urlsplit(ADMIN_URL).port or 5432
    forwarder = Forwarder(target)
    await forwarder.start()
    try:
        yield forwarder
    finally:
        with contextlib.suppress(AssertionError):
            await forwarder.cut()


async def test_unreachable_store_answers_503_then_recovers(
    postgres_url: str, forwarder: Forwarder
) -> None:
    parts = urlsplit(postgres_url)
    proxied = urlunsplit(parts._replace(netloc=f"{parts.username}@127.0.0.1:{forwarder.port}"))
    store = open_inbox(StoreConfig(url=proxied, pool_size=2))
    await store.open()
    try:
        app = build_app(store, TEST_SERVER, admin_token=ADMIN_TOKEN)
        async with serve(app) as url, httpx.AsyncClient(timeout=30) as client:
            gateway = await register(store, "line-1")
            assert (
                await upload(client, url, gateway, batch_body("line-1", 1, 2))
            ).status_code == 200

            await forwarder.cut()
            for _ in range(2):  # a dead pooled connection, then a refused reconnect
                response = await upload(client, url, gateway, batch_body("line-1", 3, 2))
                assert response.status_code == 503, response.text
                assert response.headers["retry-after"] == str(TEST_SERVER.retry_after_seconds)
            assert (await client.get(url + "/healthz")).status_code == 503

            await forwarder.start()  # same port again
            response = await upload(client, url, gateway, batch_body("line-1", 3, 2))
            assert response.status_code == 200, response.text
            assert response.json() == {"acked_seq": 4}
            assert (await client.get(url + "/healthz")).status_code == 200
    finally:
        await store.close()
