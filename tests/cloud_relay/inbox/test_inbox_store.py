"""The InboxStore contract, run against SqliteInbox and PostgresInbox."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest

from cloud_relay.errors import RejectedError, SequenceGapError
from cloud_relay.inbox.store import InboxStats, InboxStore, StoreResult
from tests.cloud_relay.inbox.harness import EventMaker, StoreMaker

# Server and test share one host clock; this only absorbs rounding and scheduling.
CLOCK_SLACK = timedelta(seconds=5)
PEM_A = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"
PEM_B = "-----BEGIN PUBLIC KEY-----\nBBBB\n-----END PUBLIC KEY-----\n"


async def seqs(store: InboxStore, gateway_id: str = "gw-1") -> list[int]:
    return [e.seq for e in await store.events_after(gateway_id, 0, 1_000_000)]


async def test_first_batch_is_stored_with_audit_fields(
    inbox: InboxStore, events: EventMaker
) -> None:
    batch = events.run(1, 10)
    before = datetime.now(UTC)
    result = await inbox.store_batch("gw-1", "key-a", 1, batch)
    after = datetime.now(UTC)

    assert result == StoreResult(acked_seq=10, stored=10)
    assert await inbox.acked_seq("gw-1") == 10
    stored = await inbox.events_after("gw-1", 0, 100)
    assert [(e.seq, e.id, e.type, e.occurred_at, e.body) for e in stored] == [
        (e.seq, e.id, e.type, e.occurred_at, e.body) for e in batch
    ]
    assert {(e.gateway_id, e.key_id) for e in stored} == {("gw-1", "key-a")}
    for event in stored:
        assert before - CLOCK_SLACK <= event.received_at <= after + CLOCK_SLACK
    gateway = await inbox.get_gateway("gw-1")
    assert gateway is not None
    assert (gateway.acked_seq, gateway.keys) == (10, ())
    assert gateway.last_seen_at is not None
    assert before - CLOCK_SLACK <= gateway.last_seen_at <= after + CLOCK_SLACK


async def test_contiguous_batches_advance_the_ack_point(
    inbox: InboxStore, events: EventMaker
) -> None:
    assert await inbox.acked_seq("gw-1") == 0
    assert await inbox.store_batch("gw-1", "k", 1, events.run(1, 5)) == StoreResult(5, 5)
    assert await inbox.store_batch("gw-1", "k", 6, events.run(6, 10)) == StoreResult(10, 5)
    assert await inbox.store_batch("gw-1", "k", 11, events.run(11, 11)) == StoreResult(11, 1)
    assert await seqs(inbox) == list(range(1, 12))


async def test_replayed_batch_stores_nothing(inbox: InboxStore, events: EventMaker) -> None:
    await inbox.store_batch("gw-1", "k", 1, events.run(1, 10))
    assert await inbox.store_batch("gw-1", "k", 1, events.run(1, 10)) == StoreResult(10, 0)
    assert await inbox.store_batch("gw-1", "k", 3, events.run(3, 7)) == StoreResult(10, 0)
    assert await seqs(inbox) == list(range(1, 11))
    assert inbox.stats() == InboxStats(
        batches=3, events_stored=10, events_replayed=15, gaps=0, transient_errors=0
    )


async def test_overlapping_batch_stores_only_new_events(
    inbox: InboxStore, events: EventMaker
) -> None:
    await inbox.store_batch("gw-1", "key-old", 1, events.run(1, 10))
    result = await inbox.store_batch("gw-1", "key-new", 6, events.run(6, 15))
    assert result == StoreResult(acked_seq=15, stored=5)
    stored = await inbox.events_after("gw-1", 0, 100)
    assert [e.seq for e in stored] == list(range(1, 16))
    # The first copy is kept: its audit fields do not change when it is resent.
    assert [e.key_id for e in stored] == ["key-old"] * 10 + ["key-new"] * 5


async def test_gap_raises_expected_seq_and_stores_nothing(
    inbox: InboxStore, events: EventMaker
) -> None:
    await inbox.store_batch("gw-1", "k", 1, events.run(1, 10))
    with pytest.raises(SequenceGapError) as caught:
        await inbox.store_batch("gw-1", "k", 12, events.run(12, 20))
    assert (caught.value.gateway_id, caught.value.expected_seq) == ("gw-1", 11)
    assert await inbox.acked_seq("gw-1") == 10
    assert await seqs(inbox) == list(range(1, 11))
    assert inbox.stats().gaps == 1


async def test_gap_on_a_new_gateway_creates_nothing(inbox: InboxStore, events: EventMaker) -> None:
    with pytest.raises(SequenceGapError) as caught:
        await inbox.store_batch("gw-new", "k", 5, events.run(5, 6, "gw-new"))
    assert caught.value.expected_seq == 1
    assert await inbox.get_gateway("gw-new") is None
    assert await inbox.list_gateways() == []


async def test_batch_that_is_not_contiguous_is_refused(
    inbox: InboxStore, events: EventMaker
) -> None:
    with pytest.raises(ValueError, match="offset 1"):
        await inbox.store_batch("gw-1", "k", 1, [events.one(1), events.one(3)])
    with pytest.raises(ValueError, match="offset 0"):
        await inbox.store_batch("gw-1", "k", 1, events.run(2, 3))
    assert await inbox.get_gateway("gw-1") is None


async def test_event_id_stored_under_another_seq_is_rejected(
    inbox: InboxStore, events: EventMaker
) -> None:
    await inbox.store_batch("gw-1", "k", 1, events.run(1, 3))
    reused = events.one(2)
    clash = [events.one(4), type(reused)(reused.id, 5, reused.type, reused.occurred_at, b"{}")]
    with pytest.raises(RejectedError, match="already stored"):
        await inbox.store_batch("gw-1", "k", 4, clash)
    assert await inbox.acked_seq("gw-1") == 3
    assert await seqs(inbox) == [1, 2, 3]


async def test_events_after_pages_one_gateway(inbox: InboxStore, events: EventMaker) -> None:
    await inbox.store_batch("gw-1", "k1", 1, events.run(1, 10))
    await inbox.store_batch("gw-2", "k2", 1, events.run(1, 10, "gw-2"))
    page = await inbox.events_after("gw-1", 3, 4)
    assert [(e.gateway_id, e.seq) for e in page] == [("gw-1", s) for s in range(4, 8)]
    assert await inbox.events_after("gw-1", 10, 5) == []
    assert await inbox.events_after("gw-unknown", 0, 5) == []


async def test_keys_rotation_and_revocation(inbox: InboxStore) -> None:
    await inbox.add_key("gw-1", "key-a", PEM_A)
    await inbox.add_key("gw-1", "key-a", PEM_A)  # idempotent
    await inbox.add_key("gw-1", "key-b", PEM_B)  # rotation: both valid for a while
    gateway = await inbox.get_gateway("gw-1")
    assert gateway is not None
    assert [(k.key_id, k.public_key_pem, k.revoked_at) for k in gateway.keys] == [
        ("key-a", PEM_A, None),
        ("key-b", PEM_B, None),
    ]

    assert await inbox.revoke_key("key-a") == 1
    assert await inbox.revoke_key("key-a") == 0
    assert await inbox.revoke_key("key-unknown") == 0
    revoked = await inbox.get_key("key-a")
    assert revoked is not None and revoked.revoked_at is not None
    assert revoked.revoked_at >= revoked.added_at
    still = await inbox.get_key("key-b")
    assert still is not None and still.revoked_at is None

    assert await inbox.revoke_gateway("gw-1") == 1
    assert await inbox.revoke_gateway("gw-1") == 0
    gone = await inbox.get_key("key-b")
    assert gone is not None and gone.revoked_at is not None
    assert await inbox.get_key("key-unknown") is None


async def test_key_of_another_gateway_or_revoked_key_is_refused(inbox: InboxStore) -> None:
    await inbox.add_key("gw-1", "key-a", PEM_A)
    with pytest.raises(RejectedError, match="gw-1"):
        await inbox.add_key("gw-2", "key-a", PEM_A)
    await inbox.revoke_key("key-a")
    with pytest.raises(RejectedError, match="revoked"):
        await inbox.add_key("gw-1", "key-a", PEM_A)
    key = await inbox.get_key("key-a")
    assert key is not None and (key.gateway_id, key.revoked_at is not None) == ("gw-1", True)
    gateway_2 = await inbox.get_gateway("gw-2")
    assert gateway_2 is None or gateway_2.keys == ()


async def test_list_gateways(inbox: InboxStore, events: EventMaker) -> None:
    await inbox.add_key("gw-b", "key-b", PEM_B)
    await inbox.store_batch("gw-a", "key-x", 1, events.run(1, 3, "gw-a"))
    await inbox.add_key("gw-a", "key-a", PEM_A)
    gateways = await inbox.list_gateways()
    assert [(g.gateway_id, g.acked_seq) for g in gateways] == [("gw-a", 3), ("gw-b", 0)]
    assert [k.key_id for k in gateways[0].keys] == ["key-a"]
    assert [k.key_id for k in gateways[1].keys] == ["key-b"]
    assert gateways[0].last_seen_at is not None
    assert gateways[1].last_seen_at is None


async def test_everything_survives_close_and_reopen(
    open_store: StoreMaker, events: EventMaker
) -> None:
    first = await open_store()
    await first.add_key("gw-1", "key-a", PEM_A)
    await first.store_batch("gw-1", "key-a", 1, events.run(1, 20))
    await first.revoke_key("key-a")
    await first.close()

    second = await open_store()
    assert await second.acked_seq("gw-1") == 20
    assert await seqs(second) == list(range(1, 21))
    key = await second.get_key("key-a")
    assert key is not None and key.revoked_at is not None
    assert await second.store_batch("gw-1", "k", 15, events.run(15, 25)) == StoreResult(25, 5)


async def test_concurrent_writers_with_overlapping_batches(
    open_store: StoreMaker, events: EventMaker
) -> None:
    """Four store instances race on one gateway with resends, overlaps and gaps."""
    total = 1_500
    stores = [await open_store() for _ in range(4)]
    stored_counts: list[int] = []
    gap_count = 0

    async def writer(store: InboxStore, rng: random.Random) -> None:
        nonlocal gap_count
        known = 0
        while known < total:
            if rng.random() < 0.15:
                first = known + rng.randint(2, 30)  # a batch past a gap: must be refused
            else:
                first = rng.randint(max(1, known - 40), known + 1)  # resend and overlap
            if first > total:
                continue
            last = min(total, first + rng.randint(0, 60))
            try:
                result = await store.store_batch("gw-1", "k", first, events.run(first, last))
            except SequenceGapError as gap:
                assert first > gap.expected_seq
                gap_count += 1
                known = gap.expected_seq - 1
                continue
            assert result.acked_seq >= last
            stored_counts.append(result.stored)
            known = result.acked_seq

    await asyncio.gather(*(writer(s, random.Random(7 + i)) for i, s in enumerate(stores)))

    assert sum(stored_counts) == total
    assert gap_count > 0
    check = stores[0]
    assert await check.acked_seq("gw-1") == total
    stored = await check.events_after("gw-1", 0, total + 10)
    assert [e.seq for e in stored] == list(range(1, total + 1))
    assert [e.id for e in stored] == [e.id for e in events.run(1, total)]
    assert sum(s.stats().events_stored for s in stores) == total
