"""Slow clients are dropped: a request head or body that does not arrive in time closes its
connection (408), and connections past the cap are answered 503, against the relay under
uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator

import pytest

from cloud_relay.config import ServerConfig
from tests.cloud_relay.conftest import TEST_SERVER, Relay, StartRelay
from tests.cloud_relay.support import Gateway, batch_body, register, signed_headers, wait_until
from wire.batch import BATCH_PATH

SLOW_HEADS = int(os.environ.get("RELAY_TEST_SLOW_HEADS", "40"))
SLOW_BODIES = int(os.environ.get("RELAY_TEST_SLOW_BODIES", "10"))
#: Short deadlines, so the test waits little; it waits on the connections, never on a clock.
QUICK = ServerConfig(
    max_body_bytes=TEST_SERVER.max_body_bytes,
    max_decoded_bytes=TEST_SERVER.max_decoded_bytes,
    header_timeout_seconds=1.0,
    body_timeout_seconds=1.5,
)
CLOSED_WITHIN_SECONDS = 30.0


@pytest.fixture
async def quick_relay(start_relay: StartRelay) -> Relay:
    return await start_relay(QUICK)


@contextlib.asynccontextmanager
async def raw(relay: Relay) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    host, port = relay.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the relay sends until it closes the connection. A close while the client
    is still sending may reach it as a reset (TCP drops what it had not read): b"" then."""
    try:
        return await asyncio.wait_for(reader.read(), CLOSED_WITHIN_SECONDS)
    except ConnectionResetError:
        return b""


async def test_connections_sending_half_a_head_are_closed_with_408(quick_relay: Relay) -> None:
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for _ in range(SLOW_HEADS):
            reader, writer = await stack.enter_async_context(raw(quick_relay))
            writer.write(b"POST /v1/batches HTTP/1.1\r\nHost: relay\r\nContent-Le")
            await writer.drain()
            readers.append(reader)
        answers = await asyncio.gather(*(until_closed(r) for r in readers))
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), answers[:3]
    # The relay goes on serving.
    assert (await quick_relay.client.get(quick_relay.url + "/healthz")).status_code == 200


async def test_a_head_trickled_byte_by_byte_is_closed(quick_relay: Relay) -> None:
    """The deadline runs from the first byte, not from the last: trickling does not reset it."""
    async with raw(quick_relay) as (reader, writer):
        closed = asyncio.create_task(until_closed(reader))
        head = b"GET /healthz HTTP/1.1\r\nHost: relay\r\nX-Padding: " + b"a" * 10_000
        for byte in head:
            if closed.done():
                break
            writer.write(bytes([byte]))
            with contextlib.suppress(OSError):
                await writer.drain()
            await asyncio.sleep(0.05)  # the slow client's pace, not a synchronisation
        answer = await closed
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer


async def test_bodies_that_stall_are_cut_and_counted(quick_relay: Relay) -> None:
    gateway: Gateway = await register(quick_relay.store, "line-1")
    body = batch_body("line-1", 1, 5)
    url = quick_relay.url + BATCH_PATH
    head = "".join(f"{k}: {v}\r\n" for k, v in signed_headers(gateway, url, body).items())
    host = quick_relay.url.removeprefix("http://")
    async with contextlib.AsyncExitStack() as stack:
        readers = []
        for _ in range(SLOW_BODIES):
            reader, writer = await stack.enter_async_context(raw(quick_relay))
            writer.write(
                f"POST {BATCH_PATH} HTTP/1.1\r\nHost: {host}\r\n{head}"
                f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body[:10]
            )
            await writer.drain()
            readers.append(reader)
        await asyncio.gather(*(until_closed(r) for r in readers))

    def counted() -> bool:
        refused = quick_relay.metrics.stats().refused_by_reason
        return refused.get("client_disconnected") == SLOW_BODIES

    await wait_until(counted, "every stalled upload counted", CLOSED_WITHIN_SECONDS)
    assert await quick_relay.store.acked_seq("line-1") == 0
    response = await quick_relay.client.post(
        url, content=body, headers=signed_headers(gateway, url, body)
    )
    assert response.json() == {"acked_seq": 5}


async def test_connections_past_the_cap_are_answered_503(start_relay: StartRelay) -> None:
    cap = 5
    relay = await start_relay(ServerConfig(max_connections=cap, header_timeout_seconds=60.0))

    async def healthz_answers(status: int) -> None:
        """Ask until the relay answers ``status`` (the server accepts connections in its own
        time), failing after a while."""
        seen = []
        for _ in range(1000):
            seen.append((await relay.client.get(relay.url + "/healthz")).status_code)
            if seen[-1] == status:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"/healthz never answered {status}: {sorted(set(seen))}")

    async with contextlib.AsyncExitStack() as stack:
        for _ in range(cap):
            _, writer = await stack.enter_async_context(raw(relay))
            writer.write(b"GET /healthz HTTP/1.1\r\n")  # a head that never ends
            await writer.drain()
        await healthz_answers(503)
    await healthz_answers(200)
