"""The uploader's pieces on their own: backoff, answer sorting, Retry-After, batch bodies."""

from __future__ import annotations

import asyncio
import gzip
import random
from datetime import UTC, datetime

import httpx
import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from agent.health.metrics import build_registry
from agent.health.status import assess
from agent.queue.model import StoredEvent
from agent.uploader.batching import BatchCollector
from agent.uploader.body import BodyEncoder, OutgoingBatch
from agent.uploader.config import RelayConfig
from agent.uploader.relay_client import (
    Acked,
    Gap,
    Refused,
    TooLarge,
    Unavailable,
    reply_for,
    retry_after_seconds,
)
from agent.uploader.stats import UploaderStats
from runtime.backoff import Backoff
from wire.batch import parse_batch
from wire.encoding import canonical_json
from wire.ids import new_event_id

GATEWAY = "gw-parts"


@given(
    initial=st.floats(min_value=0.001, max_value=10),
    cap=st.floats(min_value=0.001, max_value=600),
    attempts=st.integers(min_value=1, max_value=200),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_doubles_within_jitter_and_never_passes_the_cap(
    initial: float, cap: float, attempts: int, seed: int
) -> None:
    backoff = Backoff(initial, cap, random.Random(seed))
    limit = max(cap, initial)
    for n in range(attempts):
        ceiling = min(limit, initial * 2**n)
        delay = backoff.next_delay()
        assert ceiling / 2 <= delay <= ceiling
    backoff.reset()
    assert backoff.attempt == 0
    assert initial / 2 <= backoff.next_delay() <= initial


def test_backoff_survives_years_of_failures() -> None:
    backoff = Backoff(0.5, 60)
    for _ in range(100_000):
        assert backoff.next_delay() <= 60


def test_backoff_refuses_non_positive_delays() -> None:
    with pytest.raises(ValueError, match="positive"):
        Backoff(0, 1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),
        ("Tue, 31 Dec 2024 23:59:00 GMT", 0.0),  # in the past: go now
        ("soon", None),
        ("-3", None),
        (None, None),
    ],
)
def test_retry_after_takes_seconds_or_an_http_date(value: str | None, expected: float) -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert retry_after_seconds(value, now) == expected


BATCH = OutgoingBatch(11, 20, 10, 2000, b"...", "zstd")


def answer(status: int, body: dict[str, object] | str = "", **headers: str) -> httpx.Response:
    if isinstance(body, dict):
        return httpx.Response(status, json=body, headers=headers)
    return httpx.Response(status, content=body.encode(), headers=headers)


@pytest.mark.parametrize(
    ("response", "reply"),
    [
        (answer(200, {"acked_seq": 20}), Acked(20)),
        (answer(200, {"acked_seq": 0}), Acked(0)),
        (answer(409, {"expected_seq": 7}), Gap(7)),
        (
            answer(401, {"error": "signature created 900 s ago"}),
            Refused(401, "relay rejected our signature (401): signature created 900 s ago"),
        ),
        (
            answer(403, {"detail": "unknown or revoked key id 'abc'"}),
            Refused(403, "relay refused our key (403): unknown or revoked key id 'abc'"),
        ),
        (
            answer(413),
            TooLarge("relay refused batch 11..20 (10 events, 2000 bytes) as too large (413)"),
        ),
        (
            answer(422, {"error": "/events/3/data/qty: must be > 0"}),
            Refused(
                422, "relay refused batch 11..20 as invalid (422): /events/3/data/qty: must be > 0"
            ),
        ),
        (
            answer(
                422, {"error": "Input should be greater than 0", "location": "/events/3/data/qty"}
            ),
            Refused(
                422,
                "relay refused batch 11..20 as invalid (422): "
                "/events/3/data/qty: Input should be greater than 0",
            ),
        ),
        (
            answer(503, {"error": "inbox busy"}, **{"Retry-After": "5"}),
            Unavailable("relay cannot take uploads now (503): inbox busy", 5.0),
        ),
        (
            answer(500, "boom\n  trace"),
            Unavailable("relay cannot take uploads now (500): boom trace"),
        ),
        (answer(502), Unavailable("relay cannot take uploads now (502): Bad Gateway")),
        (
            answer(429, **{"Retry-After": "2"}),
            Unavailable("relay cannot take uploads now (429): Too Many Requests", 2.0),
        ),
        (
            answer(404, "no such route"),
            Refused(404, "relay refused the upload (404): no such route"),
        ),
        (answer(302), Unavailable("unexpected answer 302 from relay: Found")),
        (answer(200, "OK"), Refused(200, "relay answered 200 without an acked_seq: OK")),
        (
            answer(200, {"acked_seq": "5"}),
            Refused(200, 'relay answered 200 without an acked_seq: {"acked_seq":"5"}'),
        ),
        (
            answer(200, {"acked_seq": True}),
            Refused(200, 'relay answered 200 without an acked_seq: {"acked_seq":true}'),
        ),
        (
            answer(409, {"expected_seq": 0}),
            Refused(409, 'relay answered 409 without an expected_seq: {"expected_seq":0}'),
        ),
    ],
)
def test_answers_are_sorted_by_what_to_do_next(response: httpx.Response, reply: object) -> None:
    assert reply_for(response, BATCH) == reply


def test_long_reasons_are_trimmed() -> None:
    reply = reply_for(answer(500, "x" * 5000), BATCH)
    assert isinstance(reply, Unavailable)
    assert len(reply.reason) < 400 and reply.reason.endswith("…")


def stored(seq: int) -> StoredEvent:
    event_id = new_event_id()
    body = canonical_json(
        {
            "id": event_id,
            "gateway_id": GATEWAY,
            "seq": seq,
            "type": "production.reported",
            "occurred_at": "2025-03-01T06:00:00.000000Z",
            "source": "test",
            "data": {"order": "WH/MO/00001", "qty": 2.0},
        }
    )
    return StoredEvent(seq, event_id, "production.reported", body)


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_bodies_carry_the_stored_bytes_unchanged(compression: str) -> None:
    events = [stored(seq) for seq in range(5, 9)]
    batch = BodyEncoder(GATEWAY, compression).encode(events)  # type: ignore[arg-type]
    if compression == "zstd":
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(batch.body)
    elif compression == "gzip":
        raw = gzip.decompress(batch.body)
    else:
        raw = batch.body
    assert batch.content_encoding == (None if compression == "none" else compression)
    assert (batch.first_seq, batch.last_seq, batch.count, batch.raw_bytes) == (5, 8, 4, len(raw))
    for event in events:
        assert event.body in raw  # byte for byte, not re-encoded
    parsed = parse_batch(raw)
    assert [e.id for e in parsed.events] == [e.id for e in events]


def test_gzip_bodies_are_reproducible() -> None:
    events = [stored(1)]
    encoder = BodyEncoder(GATEWAY, "gzip")
    assert encoder.encode(events).body == encoder.encode(events).body


def test_bodies_refuse_gaps_and_emptiness() -> None:
    encoder = BodyEncoder(GATEWAY, "none")
    with pytest.raises(ValueError, match="not contiguous"):
        encoder.encode([stored(1), stored(3)])
    with pytest.raises(ValueError, match="at least one"):
        encoder.encode([])


def uploader_stats(**changes: object) -> UploaderStats:
    base: dict[str, object] = {
        "acked_seq": 10,
        "in_flight": None,
        "last_success_at": None,
        "last_error": None,
        "last_error_at": None,
        "alarm": None,
        "batches_sent": 1,
        "events_sent": 10,
        "bytes_sent": 300,
        "retries": 0,
        "relay_acked_seq": 10,
        "backoff_seconds": 0.0,
        "batch_max_events": 1000,
        "link_up": True,
    }
    base.update(changes)
    return UploaderStats(**base)  # type: ignore[arg-type]


def test_health_page_reads_the_alarm_and_the_link_state() -> None:
    earlier, later = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
    red = assess({"uploader": uploader_stats(alarm="relay refused our key (403): unknown key")})
    assert red.status == "red" and "relay refused our key" in red.reasons[0]
    down = uploader_stats(
        last_error="relay cannot take uploads now (503)",
        last_error_at=later,
        last_success_at=earlier,
        link_up=False,
    )
    assert assess({"uploader": down}).status == "amber"
    recovered = uploader_stats(last_error="x", last_error_at=earlier, last_success_at=later)
    assert assess({"uploader": recovered}).status == "green"


def test_metrics_expose_the_counters() -> None:
    registry = build_registry({"uploader": lambda: uploader_stats(retries=3)})
    assert registry.get_sample_value("edge_agent_uploader_retries_total") == 3
    assert registry.get_sample_value("edge_agent_uploader_acked_seq") == 10
    assert registry.get_sample_value("edge_agent_uploader_link_up") == 1


class _OnePending:
    """A queue holding one pending event that counts how often it is waited on."""

    def __init__(self) -> None:
        self.waits = 0

    async def wait_until_pending(self, after_seq: int) -> None:
        self.waits += 1
        if after_seq >= 1:
            await asyncio.Event().wait()  # nothing more ever arrives

    async def read_batch(
        self, after_seq: int, max_events: int, max_bytes: int
    ) -> list[StoredEvent]:
        if after_seq >= 1:
            return []
        return [StoredEvent(1, str(new_event_id()), "scrap.reported", b"{}")]


async def test_shipped_defaults_send_a_lone_event_without_waiting_for_company() -> None:
    config = RelayConfig()
    queue = _OnePending()
    collector = BatchCollector(queue, config.batch_max_bytes, config.batch_max_age_ms / 1000)
    events = await collector.collect(0, config.batch_max_events, wait_for_more=True)
    assert [event.seq for event in events] == [1]
    assert queue.waits == 1, "the collector waited for more events before sending"
