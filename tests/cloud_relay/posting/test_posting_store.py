"""The PostingStore contract, run against SqlitePostingStore and PostgresPostingStore."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
import stat
import uuid
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.errors import ConfigError, TransientError
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxEvent, StoreResult
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.postgres import PostgresPostingStore
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.posting.store import (
    AuditEntry,
    DeadLetter,
    NewPosting,
    OrderState,
    Posting,
    PostingCounts,
    PostingStore,
)
from tests.cloud_relay.posting.conftest import PostingStoreMaker
from tests.fixtures.postgres import database_url, postgres_url

__all__ = ["postgres_url"]

T0 = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
INDIA = timezone(timedelta(hours=5, minutes=30))
A = "mo:WH/MO/00001"
B = "mo:WH/MO/00002"
C = "scrap:BOLT-M8"


def at(seconds: float) -> datetime:
    """``seconds`` after the test epoch."""
    return T0 + timedelta(seconds=seconds)


def posting(seq: int, order_key: str = A, gateway_id: str = "gw-1") -> NewPosting:
    """The same routed event for the same (gateway, seq) every time, as a resend routes it."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{gateway_id}/{seq}"))
    body = {"id": event_id, "seq": seq, "type": "production.reported", "data": {"qty": 1.0}}
    return NewPosting(
        event_id=event_id,
        gateway_id=gateway_id,
        seq=seq,
        order_key=order_key,
        type="production.reported",
        occurred_at=at(seq) + timedelta(microseconds=seq),
        body=json.dumps(body).encode(),
    )


def event_of(p: Posting | NewPosting | DeadLetter) -> tuple[object, ...]:
    return (p.event_id, p.gateway_id, p.seq, p.order_key, p.type, p.occurred_at, p.body)


async def route(store: PostingStore, *postings: NewPosting) -> list[int]:
    """Route ``postings`` of gw-1 (through the highest seq); their pids in order."""
    await store.add_postings("gw-1", max(p.seq for p in postings), postings)
    found: dict[int, int] = {}
    for order_key in {p.order_key for p in postings}:
        found.update((p.seq, p.pid) for p in await pending(store, order_key))
    return [found[p.seq] for p in postings]


async def pending(store: PostingStore, order_key: str) -> list[Posting]:
    return await store.pending(order_key, 1000)


async def pids(store: PostingStore, order_key: str) -> list[int]:
    return [p.pid for p in await pending(store, order_key)]


async def seqs(store: PostingStore, order_key: str) -> list[int]:
    return [p.seq for p in await pending(store, order_key)]


def unknown(order_key: str, pending: int = 0) -> OrderState:
    return OrderState(order_key, {}, None, False, None, None, 0, None, pending, None)


async def test_factory_builds_the_backend_of_the_url(posting_url: str) -> None:
    store = open_posting_store(StoreConfig(url=posting_url))
    expected = SqlitePostingStore if posting_url.startswith("sqlite") else PostgresPostingStore
    assert isinstance(store, expected)


async def test_routing_skips_routed_seqs_and_covers_events_without_posting(
    posting_store: PostingStore,
) -> None:
    store = posting_store
    assert await store.route_cursor("gw-1") == 0
    # Seqs 2 and 5 need no posting (a sampled signal, say) but are routed all the same.
    assert await store.add_postings("gw-1", 5, [posting(1), posting(3, B), posting(4)]) == 3
    assert await store.route_cursor("gw-1") == 5
    # A resend overlapping what was routed inserts only what is new.
    assert await store.add_postings("gw-1", 8, [posting(4), posting(6), posting(8, B)]) == 2
    assert await store.add_postings("gw-1", 3, [posting(3, B)]) == 0
    assert await store.route_cursor("gw-1") == 8
    assert await store.add_postings("gw-2", 2, []) == 0
    assert await store.route_cursors() == {"gw-1": 8, "gw-2": 2}
    assert await seqs(store, A) == [1, 4, 6]
    assert await seqs(store, B) == [3, 8]
    assert await store.counts() == PostingCounts(pending=5, applied=0, dead=0, parked_orders=0)


async def test_postings_must_belong_to_the_routed_range(posting_store: PostingStore) -> None:
    with pytest.raises(ValueError, match="gw-2"):
        await posting_store.add_postings("gw-1", 5, [posting(1), posting(2, gateway_id="gw-2")])
    with pytest.raises(ValueError, match="through_seq"):
        await posting_store.add_postings("gw-1", 5, [posting(6)])
    assert await posting_store.route_cursors() == {}
    assert await posting_store.counts() == PostingCounts(0, 0, 0, 0)


async def test_pending_postings_keep_the_event_fields(posting_store: PostingStore) -> None:
    routed = [posting(1), posting(2), posting(3)]
    routed[1] = dataclasses.replace(routed[1], occurred_at=routed[1].occurred_at.astimezone(INDIA))
    await posting_store.add_postings("gw-1", 3, routed)
    found = await pending(posting_store, A)
    assert [event_of(p) for p in found] == [event_of(p) for p in routed]
    assert [p.occurred_at.utcoffset() for p in found] == [timedelta(0)] * 3
    assert found[0].pid < found[1].pid < found[2].pid
    assert await posting_store.pending(A, 2) == found[:2]
    assert await posting_store.pending(B, 10) == []


async def test_ready_orders_come_by_their_oldest_pending_posting(
    posting_store: PostingStore,
) -> None:
    store = posting_store
    a1, _, _, _ = await route(store, posting(1, A), posting(2, B), posting(3, C), posting(4, A))
    assert await store.ready_orders(at(0), 10) == [A, B, C]
    assert await store.ready_orders(at(0), 2) == [A, B]
    assert await store.ready_orders(at(0), 10, exclude={A, "mo:other"}) == [B, C]
    assert await store.ready_orders(at(0), 10, exclude=[A, B, C]) == []
    # A's oldest pending posting is now seq 4, behind B's and C's.
    await store.mark_applied(A, [a1], {}, {}, at(1))
    assert await store.ready_orders(at(1), 10) == [B, C, A]
    await store.mark_applied(A, await pids(store, A), {}, {}, at(1))
    assert await store.ready_orders(at(1), 10) == [B, C]


async def test_parked_orders_wait_for_their_next_attempt(posting_store: PostingStore) -> None:
    store = posting_store
    await route(store, posting(1, A), posting(2, B), posting(3, C))
    assert await store.next_wakeup() is None
    await store.park(B, "no such MO", at(60), at(0))
    await store.park(C, "Odoo is busy", at(90), at(0))
    # A parked order without pending postings sets no wake-up.
    await store.park("mo:empty", "no such MO", at(5), at(0))
    assert await store.next_wakeup() == at(60)
    assert await store.ready_orders(at(30), 10) == [A]
    assert await store.ready_orders(at(60), 10) == [A, B]
    assert await store.ready_orders(at(90), 10, exclude={A}) == [B, C]
    await store.unpark(C)
    assert await store.ready_orders(at(0), 10) == [A, C]
    assert await store.next_wakeup() == at(60)


async def test_mark_applied_saves_everything_at_once(posting_store: PostingStore) -> None:
    store = posting_store
    p1, p2, _ = await route(store, posting(1), posting(2), posting(3))
    await store.save_intent(A, {"write": {"qty_producing": 2.0}}, at(1))
    await store.park(A, "Odoo timed out", at(20), at(2))
    ledger = {"mo_id": 7, "produced": 2.0}
    effect = {"mo": "WH/MO/00001", "qty_producing": 2.0}

    await store.mark_applied(A, [p2, p1], ledger, {p1: effect}, at(25))

    assert await store.order_state(A) == OrderState(
        order_key=A,
        ledger=ledger,
        intent=None,
        parked=False,
        park_reason=None,
        parked_since=None,
        attempts=0,
        next_attempt_at=None,
        pending=1,
        updated_at=at(25),
    )
    applied = await store.applied_effects(A)
    assert [(p.pid, p.seq, e) for p, e in applied] == [(p1, 1, effect), (p2, 2, {})]
    assert event_of(applied[0][0]) == event_of(posting(1))
    assert await store.counts() == PostingCounts(pending=1, applied=2, dead=0, parked_orders=0)


async def test_mark_applied_with_a_pid_not_pending_changes_nothing(
    posting_store: PostingStore,
) -> None:
    store = posting_store
    a1, a2, b3 = await route(store, posting(1, A), posting(2, A), posting(3, B))
    await store.save_intent(A, {"step": 1}, at(1))
    await store.park(A, "refused", at(20), at(2))
    before = await store.order_state(A)

    with pytest.raises(ValueError, match=str(b3)):
        await store.mark_applied(A, [a1, b3], {"produced": 9.0}, {}, at(3))
    with pytest.raises(ValueError, match="999999"):
        await store.mark_applied(A, [a1, 999_999], {"produced": 9.0}, {}, at(3))
    assert await store.order_state(A) == before
    assert await pids(store, A) == [a1, a2]
    assert await store.applied_effects(A) == []

    await store.mark_applied(A, [a1], {"produced": 1.0}, {}, at(4))
    with pytest.raises(ValueError, match="not pending"):
        await store.mark_applied(A, [a1, a2], {"produced": 9.0}, {}, at(5))
    assert await pids(store, A) == [a2]
    assert (await store.order_state(A)).ledger == {"produced": 1.0}


async def test_park_counts_attempts_and_keeps_when_the_parking_began(
    posting_store: PostingStore,
) -> None:
    store = posting_store
    await route(store, posting(1, A), posting(2, B))
    first = await store.park(A, "no such MO", at(10), at(0))
    assert (first.parked, first.park_reason, first.attempts) == (True, "no such MO", 1)
    assert (first.parked_since, first.next_attempt_at, first.updated_at) == (at(0), at(10), at(0))
    assert first.pending == 1

    second = await store.park(A, "no such MO yet", at(40), at(10))
    assert (second.park_reason, second.attempts) == ("no such MO yet", 2)
    assert (second.parked_since, second.next_attempt_at) == (at(0), at(40))
    assert await store.order_state(A) == second

    await store.park(B, "locked", at(20), at(5))
    assert [o.order_key for o in await store.parked_orders()] == [A, B]
    assert await store.counts() == PostingCounts(pending=2, applied=0, dead=0, parked_orders=2)

    await store.unpark(A)
    state = await store.order_state(A)
    assert (state.parked, state.attempts, state.parked_since, state.next_attempt_at) == (
        False,
        0,
        None,
        None,
    )
    assert [o.order_key for o in await store.parked_orders()] == [B]
    await store.unpark("mo:never-seen")
    assert await store.order_state("mo:never-seen") == unknown("mo:never-seen")
    # A new parking starts counting afresh.
    again = await store.park(A, "no such MO", at(100), at(50))
    assert (again.attempts, again.parked_since) == (1, at(50))


async def test_dead_letter_moves_the_posting_and_clears_parking(
    posting_store: PostingStore,
) -> None:
    store = posting_store
    a1, a2, b3 = await route(store, posting(1, A), posting(2, A), posting(3, B))
    await store.save_intent(A, {"step": 1}, at(0))
    await store.park(A, "no such MO", at(10), at(0))
    await store.park(A, "no such MO", at(30), at(10))

    letter_id = await store.dead_letter(A, a1, "Odoo: no manufacturing order WH/MO/00001", at(30))

    assert await pids(store, A) == [a2]
    state = await store.order_state(A)
    assert (state.parked, state.attempts, state.intent, state.parked_since) == (
        False,
        0,
        None,
        None,
    )
    assert (state.pending, state.updated_at) == (1, at(30))
    letter = await store.get_dead_letter(letter_id)
    assert letter is not None
    assert (letter.id, *event_of(letter)) == (letter_id, *event_of(posting(1)))
    assert letter.error == "Odoo: no manufacturing order WH/MO/00001"
    assert (letter.failed_since, letter.attempts, letter.dead_at) == (at(0), 2, at(30))
    assert (letter.status, letter.resolved_at, letter.resolved_by, letter.resolution) == (
        "dead",
        None,
        None,
        None,
    )
    assert await store.list_dead_letters() == [letter]
    assert await store.list_dead_letters(order_key=A) == [letter]
    assert await store.list_dead_letters(order_key=B) == []
    assert await store.list_dead_letters(status="replayed") == []
    assert await store.counts() == PostingCounts(pending=2, applied=0, dead=1, parked_orders=0)

    with pytest.raises(ValueError, match="not pending"):
        await store.dead_letter(A, a1, "again", at(31))
    with pytest.raises(ValueError, match="not pending"):
        await store.dead_letter(A, b3, "another order's", at(31))
    with pytest.raises(ValueError, match="status"):
        await store.list_dead_letters(status="lost")
    assert await store.get_dead_letter(letter_id + 1000) is None

    # Never parked (an unreadable event, say): failing since now, no attempts.
    other_id = await store.dead_letter(B, b3, "unreadable", at(40))
    other = await store.get_dead_letter(other_id)
    assert other is not None
    assert (other.failed_since, other.attempts, other.dead_at) == (at(40), 0, at(40))
    assert [d.id for d in await store.list_dead_letters()] == [letter_id, other_id]


async def test_replay_queues_the_event_after_what_is_pending_and_audits(
    posting_store: PostingStore,
) -> None:
    store = posting_store
    a1, _, a3 = await route(store, posting(1), posting(2), posting(3))
    letter_id = await store.dead_letter(A, a1, "no such MO", at(10))
    await store.park(A, "no such MO", at(60), at(20))

    assert await store.replay([letter_id], "alice", "MO created in Odoo", at(100)) == [letter_id]

    queued = await pending(store, A)
    assert [p.seq for p in queued] == [2, 3, 1]
    assert queued[-1].pid > a3
    assert event_of(queued[-1]) == event_of(posting(1))
    letter = await store.get_dead_letter(letter_id)
    assert letter is not None
    assert (letter.status, letter.resolved_at, letter.resolved_by, letter.resolution) == (
        "replayed",
        at(100),
        "alice",
        "MO created in Odoo",
    )
    [entry] = await store.audit_log()
    assert entry == AuditEntry(
        id=entry.id,
        at=at(100),
        actor="alice",
        action="replay",
        dead_letter_id=letter_id,
        order_key=A,
        event_id=posting(1).event_id,
        reason="MO created in Odoo",
    )
    state = await store.order_state(A)
    assert (state.parked, state.attempts, state.next_attempt_at) == (False, 0, None)
    assert await store.ready_orders(at(0), 10) == [A]
    assert await store.list_dead_letters() == []
    assert await store.list_dead_letters(status=None) == [letter]
    assert await store.counts() == PostingCounts(pending=3, applied=0, dead=0, parked_orders=0)


async def test_replay_skips_ids_that_are_not_dead(posting_store: PostingStore) -> None:
    store = posting_store
    a1, b2 = await route(store, posting(1, A), posting(2, B))
    first = await store.dead_letter(A, a1, "refused", at(1))
    second = await store.dead_letter(B, b2, "refused", at(2))
    assert await store.discard(first, "bob", "posted by hand", at(3))

    assert await store.replay([second, first, 999_999, second], "alice", None, at(4)) == [second]
    assert await store.replay([second], "alice", None, at(5)) == []
    assert await seqs(store, A) == []
    assert await seqs(store, B) == [2]
    assert [(e.action, e.dead_letter_id) for e in await store.audit_log()] == [
        ("replay", second),
        ("discard", first),
    ]


async def test_concurrent_replays_of_one_letter_queue_it_once(
    open_posting: PostingStoreMaker,
) -> None:
    writer, cli = await open_posting(), await open_posting()
    [a1] = await route(writer, posting(1))
    letter_id = await writer.dead_letter(A, a1, "refused", at(1))
    results = await asyncio.gather(
        writer.replay([letter_id], "api", None, at(2)),
        cli.replay([letter_id], "cli", None, at(2)),
    )
    assert sorted(results) == [[], [letter_id]]
    assert await seqs(writer, A) == [1]
    assert len(await cli.audit_log()) == 1


async def test_discard_requires_a_dead_letter(posting_store: PostingStore) -> None:
    store = posting_store
    [a1] = await route(store, posting(1))
    letter_id = await store.dead_letter(A, a1, "refused", at(1))

    assert await store.discard(letter_id, "bob", "duplicate of a manual entry", at(2))
    letter = await store.get_dead_letter(letter_id)
    assert letter is not None
    assert (letter.status, letter.resolved_at, letter.resolved_by, letter.resolution) == (
        "discarded",
        at(2),
        "bob",
        "duplicate of a manual entry",
    )
    assert not await store.discard(letter_id, "bob", "again", at(3))
    assert not await store.discard(999_999, "bob", "no such letter", at(3))
    assert await store.replay([letter_id], "alice", None, at(4)) == []
    assert [(e.action, e.actor, e.reason) for e in await store.audit_log()] == [
        ("discard", "bob", "duplicate of a manual entry")
    ]
    assert await store.list_dead_letters(status="discarded") == [letter]
    assert await store.counts() == PostingCounts(pending=0, applied=0, dead=0, parked_orders=0)


async def test_audit_log_is_newest_first(posting_store: PostingStore) -> None:
    store = posting_store
    letters = [
        await store.dead_letter(A, pid, "refused", at(1))
        for pid in await route(store, posting(1), posting(2), posting(3))
    ]
    for n, letter_id in enumerate(letters):
        assert await store.discard(letter_id, "bob", f"reason {n}", at(10 + n))
    log = await store.audit_log()
    assert [e.dead_letter_id for e in log] == letters[::-1]
    assert [e.at for e in log] == [at(12), at(11), at(10)]
    assert await store.audit_log(limit=1) == log[:1]


async def test_writer_lock_is_held_by_one_store_at_a_time(
    open_posting: PostingStoreMaker,
) -> None:
    first, second = await open_posting(), await open_posting()
    assert not await first.writer_lock_held()
    assert await first.acquire_writer_lock()
    assert await first.acquire_writer_lock()
    assert await first.writer_lock_held()
    assert not await second.acquire_writer_lock()
    assert not await second.writer_lock_held()

    await first.release_writer_lock()
    assert not await first.writer_lock_held()
    assert await second.acquire_writer_lock()
    assert not await first.acquire_writer_lock()

    await second.close()
    assert await first.acquire_writer_lock()
    third = await open_posting()
    assert not await third.acquire_writer_lock()
    await first.close()
    assert await third.acquire_writer_lock()


async def test_another_store_sees_what_the_first_wrote(open_posting: PostingStoreMaker) -> None:
    writer = await open_posting()
    a1, a2 = await route(writer, posting(1), posting(2))
    letter_id = await writer.dead_letter(A, a1, "refused", at(1))

    cli = await open_posting()
    assert [d.id for d in await cli.list_dead_letters()] == [letter_id]
    assert await cli.route_cursor("gw-1") == 2
    assert await cli.replay([letter_id], "cli", "retry", at(2)) == [letter_id]

    assert [p.seq for p in await pending(writer, A)] == [2, 1]
    assert (await writer.order_state(A)).pending == 2
    assert [e.actor for e in await writer.audit_log()] == ["cli"]
    await writer.mark_applied(A, [a2], {"produced": 1.0}, {}, at(3))
    assert (await cli.order_state(A)).ledger == {"produced": 1.0}


async def test_json_and_times_round_trip(posting_store: PostingStore) -> None:
    store = posting_store
    ledger: dict[str, Any] = {
        "mo_id": 42,
        "produced": 0.1 + 0.2,
        "consumed": {"BOLT-M8\x00LOT-7": 3.5, "Schraube ÄÖÜ ✓": 1e-9},
        "open_logs": {"17": 99},
        "done": False,
        "lot": None,
        "closed": [{"mo_id": 41, "produced": 12.0}],
        "big": 2**53 + 1,
    }
    intent = {"calls": [["mrp.production", "write", [[42], {"qty_producing": 0.3}]]]}
    saved_at = datetime(2025, 3, 1, 11, 30, 0, 123456, tzinfo=INDIA)

    await store.save_ledger(A, ledger, saved_at)
    await store.save_intent(A, intent, saved_at)
    state = await store.order_state(A)
    assert (state.ledger, state.intent) == (ledger, intent)
    assert state.updated_at == saved_at
    assert state.updated_at is not None and state.updated_at.utcoffset() == timedelta(0)

    # Each save leaves the other field alone; a None intent clears it.
    await store.save_ledger(A, {"mo_id": 43}, at(1))
    assert (await store.order_state(A)).intent == intent
    await store.save_intent(A, None, at(2))
    state = await store.order_state(A)
    assert (state.ledger, state.intent, state.updated_at) == ({"mo_id": 43}, None, at(2))

    [a1] = await route(store, posting(1))
    await store.mark_applied(A, [a1], ledger, {a1: {"moves": ledger["consumed"]}}, saved_at)
    [(_, effect)] = await store.applied_effects(A)
    assert effect == {"moves": ledger["consumed"]}


async def test_unknown_orders_have_default_state(posting_store: PostingStore) -> None:
    store = posting_store
    assert await store.order_state(A) == unknown(A)
    await route(store, posting(1), posting(2))
    # Pending postings count even before the writer stored anything about the order.
    assert await store.order_state(A) == unknown(A, pending=2)
    assert await store.orders() == []
    assert await store.parked_orders() == []


async def test_orders_list_the_most_recently_updated_first(posting_store: PostingStore) -> None:
    store = posting_store
    await route(store, posting(1, B))
    await store.save_ledger(A, {"n": 1}, at(1))
    await store.save_ledger(B, {"n": 2}, at(3))
    await store.save_intent(C, {"n": 3}, at(2))
    listed = await store.orders()
    assert [(o.order_key, o.pending) for o in listed] == [(B, 1), (C, 0), (A, 0)]
    assert await store.orders(limit=2) == listed[:2]


async def test_naive_times_are_refused(posting_store: PostingStore) -> None:
    naive = datetime(2025, 3, 1, 6, 0)
    with pytest.raises(ValueError, match="naive"):
        await posting_store.save_ledger(A, {}, naive)
    with pytest.raises(ValueError, match="naive"):
        await posting_store.park(A, "refused", naive, at(0))
    with pytest.raises(ValueError, match="naive"):
        await posting_store.add_postings(
            "gw-1", 1, [dataclasses.replace(posting(1), occurred_at=naive)]
        )
    assert await posting_store.orders() == []
    assert await posting_store.route_cursors() == {}


async def test_posting_tables_live_beside_the_inbox(posting_url: str) -> None:
    config = StoreConfig(url=posting_url, pool_size=2)
    inbox, store = open_inbox(config), open_posting_store(config)
    await inbox.open()
    await store.open()
    try:
        event = InboxEvent(posting(1).event_id, 1, "production.reported", at(1), posting(1).body)
        assert await inbox.store_batch("gw-1", "k", 1, [event]) == StoreResult(1, 1)
        assert await store.add_postings("gw-1", 1, [posting(1)]) == 1
    finally:
        await store.close()
        await inbox.close()
    # Opening again finds both schemas current and the data in place.
    reopened = open_posting_store(config)
    await reopened.open()
    try:
        assert await seqs(reopened, A) == [1]
    finally:
        await reopened.close()


async def test_lost_lock_connection_means_the_lock_is_lost(postgres_url: str) -> None:
    """PostgreSQL only: the lock lives and dies with its connection (an SQLite flock cannot be
    lost while the process lives)."""
    first, second = PostgresPostingStore(postgres_url), PostgresPostingStore(postgres_url)
    await first.open()
    await second.open()
    try:
        assert await first.acquire_writer_lock()
        admin = await asyncpg.connect(postgres_url)
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            )
        finally:
            await admin.close()
        assert killed == 1
        assert not await first.writer_lock_held()
        assert await second.acquire_writer_lock()
        assert not await first.acquire_writer_lock()
    finally:
        await first.close()
        await second.close()


async def test_deleted_lock_file_means_the_lock_is_lost(tmp_path: Path) -> None:
    """SQLite only: a lock file removed under the writer could be created and locked anew by
    another, so the first stops counting itself the writer."""
    path = tmp_path / "relay.db"
    first, second = SqlitePostingStore(path), SqlitePostingStore(path)
    await first.open()
    await second.open()
    try:
        assert await first.acquire_writer_lock()
        (tmp_path / "relay.db.writer-lock").unlink()
        assert await second.acquire_writer_lock()
        assert not await first.writer_lock_held()
        assert await second.writer_lock_held()
        assert stat.S_IMODE((tmp_path / "relay.db.writer-lock").stat().st_mode) == 0o600
    finally:
        await first.close()
        await second.close()


async def test_locked_sqlite_file_past_the_timeout_is_transient(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    store = SqlitePostingStore(path, busy_timeout_seconds=0.05)
    await store.open()
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientError, match="locked"):
            await store.add_postings("gw-1", 1, [posting(1)])
        assert await store.route_cursor("gw-1") == 0
        other.execute("ROLLBACK")
        assert await store.add_postings("gw-1", 1, [posting(1)]) == 1
    finally:
        other.close()
        await store.close()


async def test_missing_postgres_database_is_a_config_error() -> None:
    store = PostgresPostingStore(database_url(f"relay_absent_{uuid.uuid4().hex[:8]}"))
    with pytest.raises(ConfigError, match="does not exist"):
        await store.open()
