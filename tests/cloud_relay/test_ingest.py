"""POST /v1/batches against a real uvicorn and real inboxes: acceptance and every refusal."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import pytest
import zstandard

from cloud_relay.config import ServerConfig
from cloud_relay.inbox.store import InboxEvent, InboxStore
from cloud_relay.ingest.batches import inbox_events
from tests.cloud_relay.conftest import TEST_SERVER, Relay, StartRelay
from tests.cloud_relay.support import (
    Gateway,
    batch_body,
    compress,
    register,
    signed_headers,
    upload,
    wait_until,
)
from wire.batch import BATCH_PATH, parse_batch
from wire.events import Event
from wire.keys import generate_private_key
from wire.signing import content_digest

GW = "line-1"


@pytest.fixture
async def gateway(relay: Relay) -> Gateway:
    return await register(relay.store, GW)


async def stored(store: InboxStore, gateway_id: str = GW) -> list[int]:
    return [e.seq for e in await store.events_after(gateway_id, 0, 100_000)]


async def assert_nothing_new(relay: Relay, seqs: list[int], acked: int) -> None:
    assert await stored(relay.store) == seqs
    assert await relay.store.acked_seq(GW) == acked


async def test_batches_are_stored_in_order_with_audit_fields(
    relay: Relay, gateway: Gateway
) -> None:
    first = batch_body(GW, 1, 3)
    response = await upload(relay.client, relay.url, gateway, first)
    assert response.status_code == 200, response.text
    assert response.json() == {"acked_seq": 3}
    response = await upload(relay.client, relay.url, gateway, batch_body(GW, 4, 2))
    assert response.json() == {"acked_seq": 5}

    events = await relay.store.events_after(GW, 0, 100)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert {e.key_id for e in events} == {gateway.key_id}
    sent = json.loads(first)["events"]
    assert events[0].body == Event.model_validate(sent[0]).encode()
    assert events[0].id == sent[0]["id"]
    assert relay.metrics.stats().events_stored == 5


@pytest.mark.parametrize("encoding", ["zstd", "gzip", "identity"])
async def test_compressed_batches_are_accepted(
    relay: Relay, gateway: Gateway, encoding: str
) -> None:
    body = batch_body(GW, 1, 50)
    response = await upload(relay.client, relay.url, gateway, body, encoding=encoding)
    assert response.status_code == 200, response.text
    assert response.json() == {"acked_seq": 50}
    assert await stored(relay.store) == list(range(1, 51))


async def test_replayed_batch_after_ack_stores_nothing_new(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 4)
    assert (await upload(relay.client, relay.url, gateway, body)).json() == {"acked_seq": 4}
    before = await relay.store.events_after(GW, 0, 100)

    replay = await upload(relay.client, relay.url, gateway, body)
    overlap = await upload(relay.client, relay.url, gateway, batch_body(GW, 3, 3))

    assert replay.status_code == 200 and replay.json() == {"acked_seq": 4}
    assert overlap.status_code == 200 and overlap.json() == {"acked_seq": 5}
    after = await relay.store.events_after(GW, 0, 100)
    assert after[:4] == before
    assert [e.seq for e in after] == [1, 2, 3, 4, 5]
    assert relay.metrics.stats().events_stored == 5


async def test_gap_is_409_with_expected_seq(relay: Relay, gateway: Gateway) -> None:
    await upload(relay.client, relay.url, gateway, batch_body(GW, 1, 2))
    response = await upload(relay.client, relay.url, gateway, batch_body(GW, 5, 2))
    assert response.status_code == 409
    assert response.json()["expected_seq"] == 3
    await assert_nothing_new(relay, [1, 2], 2)
    assert relay.metrics.stats().refused_by_reason["sequence_gap"] == 1


async def test_invalid_event_is_422_naming_the_field(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 3, e1={"qty": -4})
    response = await upload(relay.client, relay.url, gateway, body)
    assert response.status_code == 422
    assert response.json()["location"] == "/events/1/data/qty"
    assert "greater than 0" in response.json()["error"]
    await assert_nothing_new(relay, [], 0)


async def test_body_that_is_not_json_is_422(relay: Relay, gateway: Gateway) -> None:
    response = await upload(relay.client, relay.url, gateway, b"{not json")
    assert response.status_code == 422
    assert response.json()["location"] == ""


# --- signatures -----------------------------------------------------------------------------


async def test_tampered_body_is_401(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 2)
    tampered = body.replace(b'"qty":1.0', b'"qty":9.0', 1)
    assert tampered != body and len(tampered) == len(body)
    response = await upload(relay.client, relay.url, gateway, body, send_body=tampered)
    assert response.status_code == 401
    assert "Content-Digest" in response.json()["error"]
    await assert_nothing_new(relay, [], 0)


async def test_tampered_content_digest_is_401(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 2)
    tampered = body.replace(b'"qty":1.0', b'"qty":9.0', 1)
    response = await upload(
        relay.client,
        relay.url,
        gateway,
        body,
        send_body=tampered,
        replace={"Content-Digest": content_digest(tampered)},
    )
    assert response.status_code == 401
    await assert_nothing_new(relay, [], 0)


async def test_missing_signature_is_401(relay: Relay) -> None:
    response = await relay.client.post(relay.url + BATCH_PATH, content=batch_body(GW, 1, 1))
    assert response.status_code == 401
    assert await relay.store.acked_seq(GW) == 0


async def test_unregistered_key_is_403(relay: Relay) -> None:
    stranger = Gateway(GW, generate_private_key())
    response = await upload(relay.client, relay.url, stranger, batch_body(GW, 1, 2))
    assert response.status_code == 403
    assert relay.metrics.stats().refused_by_reason["unknown_key"] == 1
    assert await stored(relay.store) == []


async def test_revoked_key_is_403(relay: Relay, gateway: Gateway) -> None:
    await upload(relay.client, relay.url, gateway, batch_body(GW, 1, 1))
    assert await relay.store.revoke_key(gateway.key_id) == 1
    response = await upload(relay.client, relay.url, gateway, batch_body(GW, 2, 1))
    assert response.status_code == 403
    assert relay.metrics.stats().refused_by_reason["revoked_key"] == 1
    await assert_nothing_new(relay, [1], 1)


async def test_rotated_key_keeps_working_while_old_one_is_revoked(relay: Relay) -> None:
    old = await register(relay.store, GW)
    new = await register(relay.store, GW)
    assert (await upload(relay.client, relay.url, old, batch_body(GW, 1, 1))).status_code == 200
    await relay.store.revoke_key(old.key_id)
    assert (await upload(relay.client, relay.url, new, batch_body(GW, 2, 1))).status_code == 200
    assert (await upload(relay.client, relay.url, old, batch_body(GW, 3, 1))).status_code == 403
    assert [e.key_id for e in await relay.store.events_after(GW, 0, 10)] == [old.key_id, new.key_id]


@pytest.mark.parametrize("offset", [-3600, 3600])
async def test_stale_created_is_401(relay: Relay, gateway: Gateway, offset: int) -> None:
    created = int(time.time()) + offset
    response = await upload(relay.client, relay.url, gateway, batch_body(GW, 1, 2), created=created)
    assert response.status_code == 401
    assert relay.metrics.stats().refused_by_reason["stale_signature"] == 1
    await assert_nothing_new(relay, [], 0)


async def test_batch_for_another_gateway_is_403(relay: Relay, gateway: Gateway) -> None:
    await register(relay.store, "line-2")
    response = await upload(relay.client, relay.url, gateway, batch_body("line-2", 1, 2))
    assert response.status_code == 403
    assert relay.metrics.stats().refused_by_reason["wrong_gateway"] == 1
    assert await stored(relay.store, "line-2") == []
    await assert_nothing_new(relay, [], 0)


async def test_url_is_verified_against_public_url(start_relay: StartRelay) -> None:
    public = "https://relay.example.com/ingest"
    relay = await start_relay(ServerConfig(public_url=public + "/"))
    gateway = await register(relay.store, GW)
    body = batch_body(GW, 1, 1)
    as_seen = await upload(relay.client, relay.url, gateway, body)
    assert as_seen.status_code == 401
    headers = signed_headers(gateway, public + BATCH_PATH, body)
    response = await relay.client.post(relay.url + BATCH_PATH, content=body, headers=headers)
    assert response.status_code == 200, response.text


# --- sizes and encodings --------------------------------------------------------------------


async def test_oversized_body_is_413(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 1) + b" " * TEST_SERVER.max_body_bytes
    response = await upload(relay.client, relay.url, gateway, body)
    assert response.status_code == 413
    assert relay.metrics.stats().refused_by_reason["body_too_large"] == 1
    await assert_nothing_new(relay, [], 0)


async def test_oversized_body_without_content_length_is_413(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 1) + b" " * TEST_SERVER.max_body_bytes
    headers = signed_headers(gateway, relay.url + BATCH_PATH, body)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 16384):
            yield body[start : start + 16384]

    response = await relay.client.post(relay.url + BATCH_PATH, content=chunks(), headers=headers)
    assert response.status_code == 413
    await assert_nothing_new(relay, [], 0)


async def test_client_gone_mid_body_is_counted_not_an_error(
    relay: Relay, gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    # A gateway whose WAN link drops while it sends a batch: routine, not a relay error.
    body = batch_body(GW, 1, 20)
    headers = signed_headers(gateway, relay.url + BATCH_PATH, body)
    host, port = urlsplit(relay.url).hostname, urlsplit(relay.url).port
    _, writer = await asyncio.open_connection(host, port)
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    writer.write(
        f"POST {BATCH_PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
        f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body[: len(body) // 2]
    )
    await writer.drain()
    writer.transport.abort()

    def counted() -> bool:
        return relay.metrics.stats().refused_by_reason.get("client_disconnected") == 1

    await wait_until(counted, "the cut-off batch counted as refused")
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    await assert_nothing_new(relay, [], 0)


async def test_decompression_bomb_is_413(relay: Relay, gateway: Gateway) -> None:
    # 1 GiB of zeros compresses to about 32 KiB: well under the body cap, far past the decoded one.
    out = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(out, closefd=False) as writer:
        zeros = bytes(1 << 20)
        for _ in range(1024):
            writer.write(zeros)
    bomb = out.getvalue()
    assert len(bomb) < TEST_SERVER.max_body_bytes
    url = relay.url + BATCH_PATH
    headers = signed_headers(gateway, url, bomb, encoding="zstd")
    response = await relay.client.post(url, content=bomb, headers=headers)
    assert response.status_code == 413
    assert relay.metrics.stats().refused_by_reason["decoded_too_large"] == 1
    await assert_nothing_new(relay, [], 0)


async def test_gzip_bomb_is_413(relay: Relay, gateway: Gateway) -> None:
    bomb = compress(bytes(64 << 20), "gzip")
    assert len(bomb) < TEST_SERVER.max_body_bytes
    url = relay.url + BATCH_PATH
    response = await relay.client.post(
        url, content=bomb, headers=signed_headers(gateway, url, bomb, encoding="gzip")
    )
    assert response.status_code == 413
    await assert_nothing_new(relay, [], 0)


async def test_unknown_encoding_is_415(relay: Relay, gateway: Gateway) -> None:
    body = batch_body(GW, 1, 1)
    response = await upload(
        relay.client, relay.url, gateway, body, replace={"Content-Encoding": "br"}
    )
    assert response.status_code == 415
    assert "br" in response.json()["error"]
    await assert_nothing_new(relay, [], 0)


async def test_corrupt_zstd_is_422(relay: Relay, gateway: Gateway) -> None:
    url = relay.url + BATCH_PATH
    garbage = b"\x28\xb5\x2f\xfd" + b"\x00garbage" * 10
    response = await relay.client.post(
        url, content=garbage, headers=signed_headers(gateway, url, garbage, encoding="zstd")
    )
    assert response.status_code == 422
    assert "zstd" in response.json()["error"]
    await assert_nothing_new(relay, [], 0)


@pytest.mark.parametrize("canonical", [True, False])
def test_inbox_events_are_what_their_constructor_makes(canonical: bool) -> None:
    body = batch_body(GW, 3, 4)
    if not canonical:
        body = body.replace(b'"qty":1.0', b'"qty":1')  # valid, but takes the full parse
    batch = parse_batch(body)
    assert (batch.bodies is not None) is canonical
    expected = [
        InboxEvent(e.id, e.seq, e.type, e.occurred_at, Event.model_validate(e.to_wire()).encode())
        for e in batch.events
    ]
    assert inbox_events(batch) == expected
    assert [e.body for e in inbox_events(batch)] == [e.encode() for e in batch.events]
