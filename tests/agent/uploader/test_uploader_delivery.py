"""The uploader against a healthy relay: everything arrives once, in order, in bounded batches."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any, cast

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.queue.store import QueueStore
from agent.uploader.config import RelayConfig
from agent.uploader.uploader import Uploader
from tests.agent.uploader.harness import (
    GATEWAY_ID,
    fill,
    new_event,
    relay_config,
    running,
    wait_until,
)
from tests.fixtures.receiver import Fault, Receiver, make_tls_files


async def test_delivers_backlog_and_live_events_in_order(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 500)
    uploader = Uploader(relay_config(receiver, batch_max_events=37), queue, GATEWAY_ID, private_key)
    rng = random.Random(7)
    async with running(uploader):
        total = 500
        while total < 2000:  # keep producing while the uploader drains
            chunk = rng.randint(1, 60)
            await queue.enqueue([new_event(total + i) for i in range(chunk)])
            total += chunk
            await asyncio.sleep(0)
        await wait_until(lambda: uploader.stats().acked_seq == total, "all are acked")

    seqs = [seq for _, seq, _ in receiver.received]
    assert seqs == list(range(1, total + 1)), "sent out of order or more than once"
    assert receiver.acked(GATEWAY_ID) == total
    assert receiver.duplicates == 0 and not receiver.id_mismatches
    assert len(set(receiver.stored_ids(GATEWAY_ID))) == total
    assert all(r.count <= 37 for r in receiver.requests)
    stats = uploader.stats()
    assert stats.acked_seq == total == stats.relay_acked_seq
    assert stats.events_sent == total
    assert stats.batches_sent == len(receiver.requests)
    assert stats.bytes_sent == sum(r.wire_bytes for r in receiver.requests)
    assert stats.retries == 0 and stats.alarm is None and stats.last_error is None
    assert stats.link_up and stats.last_success_at is not None and stats.in_flight is None
    assert queue.stats().acked_seq == total and queue.stats().pending == 0


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
async def test_bodies_in_each_encoding_are_verified_by_the_relay(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey, compression: str
) -> None:
    await fill(queue, 300, pad=100)
    config = relay_config(receiver, compression=compression, batch_max_events=100)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 300, "all 300 are stored")

    expected = None if compression == "none" else compression
    assert [r.content_encoding for r in receiver.requests] == [expected] * 3
    assert receiver.statuses() == [200, 200, 200]
    for record in receiver.requests:
        if compression == "none":
            assert record.wire_bytes == record.raw_bytes
        else:
            assert record.wire_bytes < record.raw_bytes / 3  # repetitive events compress well


async def test_batch_is_bounded_by_count(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 30)
    uploader = Uploader(relay_config(receiver, batch_max_events=7), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 30, "all 30 are stored")
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [
        (1, 7),
        (8, 14),
        (15, 21),
        (22, 28),
        (29, 30),
    ]


async def test_batch_is_bounded_by_bytes(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 40, pad=300)  # about 450 bytes each
    sizes = [len(e.body) for e in await queue.read_batch(0, 40, 10**9)]
    limit = 2048
    uploader = Uploader(
        relay_config(receiver, batch_max_bytes=limit), queue, GATEWAY_ID, private_key
    )
    async with running(uploader):
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 40, "all 40 are stored")
    for record in receiver.requests:
        assert record.first_seq is not None and record.last_seq is not None
        batch_sizes = sizes[record.first_seq - 1 : record.last_seq]
        assert sum(batch_sizes) <= limit
        if record.last_seq < 40:  # not the tail: the next event would not have fitted
            assert sum(batch_sizes) + sizes[record.last_seq] > limit
    assert max(r.count for r in receiver.requests) == limit // max(sizes)


async def test_single_event_larger_than_the_byte_limit_still_goes_alone(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await queue.enqueue([new_event(0), new_event(1, pad=1024), new_event(2)])
    uploader = Uploader(
        relay_config(receiver, batch_max_bytes=1024), queue, GATEWAY_ID, private_key
    )
    async with running(uploader):
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 3, "all 3 are stored")
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [(1, 1), (2, 2), (3, 3)]


async def test_shipped_defaults_batch_only_what_arrived_during_a_flight(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    # An event on an idle link goes alone; those queued while it is in flight share the next.
    defaults = RelayConfig().model_dump(exclude={"url"})
    config = relay_config(receiver, **{"batch_max_age_ms": defaults["batch_max_age_ms"]})
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    receiver.fail_next(Fault.hang())
    async with running(uploader):
        await queue.enqueue([new_event(0)])
        await wait_until(lambda: uploader.stats().in_flight == (1, 1), "seq 1 is in flight")
        for n in range(1, 10):
            await queue.enqueue([new_event(n)])
        receiver.release()
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 10, "all 10 are stored")
    sent = [(r.first_seq, r.last_seq) for r in receiver.requests if r.status == 200]
    assert sent == [(1, 1), (2, 10)]


async def test_partial_batch_waits_for_more_until_full(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    # With an age limit far beyond the test's timeout, only a full batch can be sent.
    config = relay_config(receiver, batch_max_events=5, batch_max_age_ms=600_000)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    async with running(uploader):
        for n in range(5):
            await queue.enqueue([new_event(n)])
            await asyncio.sleep(0)
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 5, "the full batch is stored")
        await queue.enqueue([new_event(5), new_event(6)])
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [(1, 5)]


async def test_partial_batch_leaves_when_its_age_limit_passes(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    config = relay_config(receiver, batch_max_events=1000, batch_max_age_ms=50)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await queue.enqueue([new_event(0), new_event(1)])
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 2, "the partial batch is stored")
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [(1, 2)]


async def test_uploads_over_tls_with_the_configured_ca(
    queue: QueueStore, private_key: Ed25519PrivateKey, tmp_path: Path
) -> None:
    ca, cert, key = make_tls_files(tmp_path)
    receiver = Receiver(certfile=cert, keyfile=key)
    receiver.register(GATEWAY_ID, private_key.public_key())
    await fill(queue, 10)
    async with receiver:
        assert receiver.url.startswith("https://")
        trusting = Uploader(relay_config(receiver, ca_file=ca), queue, GATEWAY_ID, private_key)
        async with running(trusting):
            await wait_until(lambda: receiver.acked(GATEWAY_ID) == 10, "all 10 are stored")

        await queue.enqueue([new_event(10)])
        untrusting = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
        async with running(untrusting):
            await wait_until(lambda: untrusting.stats().last_error is not None, "TLS fails")
        assert "certificate" in (untrusting.stats().last_error or "").lower()
        assert receiver.acked(GATEWAY_ID) == 10


class _CountingReads:
    """The queue, counting the batch reads made through it."""

    def __init__(self, queue: QueueStore) -> None:
        self._queue = queue
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)

    async def read_batch(self, after_seq: int, max_events: int, max_bytes: int) -> Any:
        self.reads += 1
        return await self._queue.read_batch(after_seq, max_events, max_bytes)


async def test_next_batch_is_read_while_one_is_in_flight(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 25)
    counting = _CountingReads(queue)
    config = relay_config(receiver, batch_max_events=10)
    uploader = Uploader(config, cast(QueueStore, counting), GATEWAY_ID, private_key)
    receiver.fail_next(Fault.hang())
    async with running(uploader):
        await wait_until(lambda: uploader.stats().in_flight == (1, 10), "seq 1..10 in flight")
        await wait_until(lambda: counting.reads == 2, "seq 11..20 read during the flight")
        receiver.release()
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 25, "all 25 are stored")
    sent = [(r.first_seq, r.last_seq) for r in receiver.requests if r.status == 200]
    assert sent == [(1, 10), (11, 20), (21, 25)]


async def test_a_batch_read_ahead_is_not_sent_short_of_what_arrived_since(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 7)
    counting = _CountingReads(queue)
    config = relay_config(receiver, batch_max_events=5)
    uploader = Uploader(config, cast(QueueStore, counting), GATEWAY_ID, private_key)
    receiver.fail_next(Fault.hang())
    async with running(uploader):
        await wait_until(lambda: counting.reads == 2, "seq 6..7 read during the flight")
        await queue.enqueue([new_event(7), new_event(8)])
        receiver.release()
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 9, "all 9 are stored")
    sent = [(r.first_seq, r.last_seq) for r in receiver.requests if r.status == 200]
    assert sent == [(1, 5), (6, 9)]
