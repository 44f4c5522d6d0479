"""QueueStore on real SQLite files: seqs, bodies, group commit, state, dedupe, reads, acks."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.errors import AgentError, ConfigError, RejectedError
from agent.queue.model import NewEvent
from wire.events import parse_event
from wire.ids import is_uuid7

GATEWAY = "gw-test"  # the open_store fixture's default
OpenStore = Callable[..., Awaitable[Any]]
MakeEvent = Callable[..., NewEvent]


def _sql(conn: sqlite3.Connection, sql: str) -> list[Any]:
    return conn.execute(sql).fetchall()


async def _drain(store: object, after: int = 0) -> list[int]:
    seqs: list[int] = []
    while True:
        batch = await store.read_batch(after, 1000, 10**9)  # type: ignore[attr-defined]
        if not batch:
            return seqs
        seqs += [e.seq for e in batch]
        after = batch[-1].seq


async def test_seq_is_gapless_across_restart_and_full_ack(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store()
    first = await store.enqueue([make_event(i) for i in range(5)])
    assert [r.seq for r in first] == [1, 2, 3, 4, 5]
    await store.close()

    store = await open_store()
    assert [r.seq for r in await store.enqueue([make_event(6)])] == [6]
    await store.ack_through(6)
    assert store.stats().pending == 0
    await store.close()

    # Everything acked and deleted: the next seq must still continue, not restart at 1.
    store = await open_store()
    assert [r.seq for r in await store.enqueue([make_event(7), make_event(8)])] == [7, 8]
    assert await _drain(store, 6) == [7, 8]
    stats = store.stats()
    assert (stats.first_seq, stats.last_seq, stats.acked_seq, stats.pending) == (7, 8, 6, 2)


async def test_body_is_the_canonical_wire_event(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store()
    ev = make_event(3)
    (res,) = await store.enqueue([ev])
    (stored,) = await store.read_batch(0, 10, 10**6)
    doc = json.loads(stored.body)
    parsed = parse_event(doc)
    assert parsed.encode() == stored.body  # byte for byte what the pydantic model would produce
    assert (parsed.seq, parsed.gateway_id, parsed.type) == (res.seq, GATEWAY, ev.type)
    assert parsed.id == stored.id and is_uuid7(stored.id)
    assert doc["occurred_at"] == "2025-01-02T03:04:05.600000Z"
    assert stored.type == "production.reported"


async def test_concurrent_producers_share_commits(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(flush_interval_ms=2.0)

    async def produce(k: int) -> list[int]:
        out = []
        for i in range(20):
            (r,) = await store.enqueue([make_event(k * 100 + i)])
            assert r.seq is not None
            out.append(r.seq)
        return out

    results = await asyncio.gather(*(produce(k) for k in range(50)))
    seqs = sorted(s for r in results for s in r)
    assert seqs == list(range(1, 1001))
    stats = store.stats()
    assert stats.enqueued_total == 1000
    assert stats.commits_total < 1000 // 5, stats.commits_total
    assert await _drain(store) == seqs


async def test_commit_max_events_bounds_a_transaction(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(commit_max_events=10, flush_interval_ms=0)
    await asyncio.gather(*(store.enqueue([make_event(i)]) for i in range(100)))
    assert store.stats().commits_total >= 10
    # A single call larger than the bound still commits whole.
    res = await store.enqueue([make_event(i) for i in range(25)])
    assert [r.seq for r in res] == list(range(101, 126))


async def test_state_commits_with_events_or_not_at_all(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(flush_interval_ms=50)
    bad = NewEvent(
        "production.reported", make_event().occurred_at, "s", {"order": "x", "qty": object()}
    )
    good_call = store.enqueue([make_event(1)], {"cursor": "good"})
    bad_call = store.enqueue([make_event(2), bad], {"cursor": "bad", "other": "bad"})
    good, failed = await asyncio.gather(good_call, bad_call, return_exceptions=True)
    assert isinstance(failed, RejectedError) and "cannot be encoded" in str(failed)
    assert [r.seq for r in good] == [1]  # type: ignore[union-attr]
    assert store.stats().commits_total == 1  # the two calls did share one transaction
    assert await store.get_state("cursor") == "good"
    assert await store.get_state("other") is None
    assert await _drain(store) == [1]

    assert await store.enqueue([], {"cursor": "state only"}) == []
    assert await store.get_state("cursor") == "state only"
    assert [r.seq for r in await store.enqueue([make_event(3)])] == [2]


async def test_dedupe_keys(open_store: OpenStore, make_event: MakeEvent) -> None:
    store = await open_store(dedupe_keys_kept=100)
    res = await store.enqueue(
        [make_event(1, dedupe_key="a"), make_event(2, dedupe_key="a"), make_event(3)]
    )
    assert [(r.seq, r.duplicate) for r in res] == [(1, False), (None, True), (2, False)]
    res = await store.enqueue([make_event(4, dedupe_key="a"), make_event(5, dedupe_key="b")])
    assert [(r.seq, r.duplicate) for r in res] == [(None, True), (3, False)]
    # Concurrent calls in one commit see each other's keys.
    both = await asyncio.gather(
        store.enqueue([make_event(6, dedupe_key="c")]),
        store.enqueue([make_event(7, dedupe_key="c")]),
    )
    assert sorted(r[0].duplicate for r in both) == [False, True]
    assert store.stats().duplicates == 3
    await store.close()

    store = await open_store(dedupe_keys_kept=100)
    (again,) = await store.enqueue([make_event(8, dedupe_key="b")])
    assert again.duplicate  # remembered across restarts
    for chunk in range(5):  # 250 more keys: the oldest are forgotten, the newest kept
        await store.enqueue([make_event(i, dedupe_key=f"k{chunk}-{i}") for i in range(50)])
    (old,) = await store.enqueue([make_event(9, dedupe_key="a")])
    (recent,) = await store.enqueue([make_event(10, dedupe_key="k4-49")])
    assert not old.duplicate and recent.duplicate
    with sqlite3.connect(store._path) as conn:  # type: ignore[attr-defined]
        (rows,) = conn.execute("SELECT COUNT(*) FROM dedupe").fetchone()
    assert 100 <= rows <= 100 + 100  # bounded: kept plus the pruning slack


async def test_read_batch_limits(open_store: OpenStore, make_event: MakeEvent) -> None:
    store = await open_store()
    assert await store.read_batch(0, 10, 10**6) == []
    await store.enqueue([make_event(i) for i in range(10)])
    all_events = await store.read_batch(0, 100, 10**6)
    assert [e.seq for e in all_events] == list(range(1, 11))
    size = len(all_events[0].body)
    assert [e.seq for e in await store.read_batch(0, 3, 10**6)] == [1, 2, 3]
    assert [e.seq for e in await store.read_batch(4, 100, 3 * size + 1)] == [5, 6, 7]
    # One event always comes back, even when it alone is over the byte limit.
    assert [e.seq for e in await store.read_batch(7, 100, 1)] == [8]
    assert await store.read_batch(10, 100, 10**6) == []
    with pytest.raises(ValueError):
        await store.read_batch(0, 0, 10**6)


async def test_ack_persists_and_is_idempotent(open_store: OpenStore, make_event: MakeEvent) -> None:
    store = await open_store()
    await store.enqueue([make_event(i) for i in range(10)])
    before = store.stats().bytes
    await store.ack_through(4)
    await store.ack_through(4)
    await store.ack_through(2)
    stats = store.stats()
    assert (stats.acked_seq, stats.first_seq, stats.pending) == (4, 5, 6)
    assert 0 < stats.bytes < before
    await store.close()

    store = await open_store()
    assert store.stats().acked_seq == 4
    assert store.stats().bytes == stats.bytes
    assert await _drain(store) == [5, 6, 7, 8, 9, 10]
    await store.ack_through(99)  # beyond the last seq: clamped, not an error
    stats = store.stats()
    assert (stats.acked_seq, stats.pending, stats.bytes, stats.first_seq) == (10, 0, 0, None)
    assert stats.oldest_age_seconds is None


async def test_waiters(open_store: OpenStore, make_event: MakeEvent) -> None:
    store = await open_store()
    waiter = asyncio.create_task(store.wait_until_pending(0))
    await asyncio.sleep(0)
    assert not waiter.done()
    await store.enqueue([make_event()])
    await asyncio.wait_for(waiter, 5)
    await asyncio.wait_for(store.wait_until_pending(0), 5)  # already true: returns at once
    later = asyncio.create_task(store.wait_until_pending(1))
    await store.close()
    with pytest.raises(AgentError):
        await asyncio.wait_for(later, 5)
    with pytest.raises(AgentError):
        await store.enqueue([make_event()])


async def test_invalid_calls_write_nothing(open_store: OpenStore, make_event: MakeEvent) -> None:
    store = await open_store()
    naive = NewEvent("production.reported", make_event().occurred_at.replace(tzinfo=None), "s", {})
    with pytest.raises(RejectedError, match="UTC offset"):
        await store.enqueue([make_event(), naive])
    with pytest.raises(RejectedError, match="unknown event type"):
        await store.enqueue([NewEvent("x.y", make_event().occurred_at, "s", {})])
    assert [r.seq for r in await store.enqueue([make_event()])] == [1]


async def test_rejects_are_bounded_and_counted(open_store: OpenStore) -> None:
    store = await open_store(reject_table_rows=10)
    for i in range(25):
        await store.record_reject("mqtt", f"plant/line1 /data/qty #{i}", "qty: not a number", b"x")
    newest = await store.recent_rejects(5)
    assert [r.where for r in newest] == [f"plant/line1 /data/qty #{i}" for i in range(24, 19, -1)]
    assert len(await store.recent_rejects(100)) == 10
    assert newest[0].payload == b"x" and newest[0].at.tzinfo is not None
    await store.record_reject("opcua", "ns=2;s=X", "too big", b"y" * 200_000)
    assert len((await store.recent_rejects(1))[0].payload) == 64 * 1024
    assert store.stats().rejected == 26
    await store.close()
    store = await open_store(reject_table_rows=10)
    assert store.stats().rejected == 26


async def test_wrong_gateway_is_refused(open_store: OpenStore, make_event: MakeEvent) -> None:
    store = await open_store()
    await store.enqueue([make_event()])
    await store.close()
    with pytest.raises(ConfigError, match="belongs to gateway 'gw-test', not 'gw-other'"):
        await open_store(gateway_id="gw-other")


async def test_second_process_on_the_same_queue_is_refused(open_store: OpenStore) -> None:
    await open_store()
    with pytest.raises(ConfigError, match="in use"):
        await open_store()


async def test_durability_sets_synchronous(open_store: OpenStore, tmp_path: Path) -> None:
    for durability, level in (("power", 2), ("process", 1)):
        store = await open_store(tmp_path / f"{durability}.db", durability=durability)
        db = store._opened.writer  # type: ignore[attr-defined]
        assert await db.run(_sql, "PRAGMA synchronous") == [(level,)]
        assert await db.run(_sql, "PRAGMA journal_mode") == [("wal",)]
        assert await db.run(_sql, "PRAGMA secure_delete") == [(0,)]


async def test_long_ack_goes_in_chunks_and_partial_acks_stay_exact(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(disk_reserve_bytes=256 * 1024)  # chunks of 64 KiB of events
    for _ in range(4):
        await store.enqueue([make_event(i, pad=100) for i in range(500)])
    commits = store.stats().commits_total
    await store.ack_through(1500)
    stats = store.stats()
    assert (stats.acked_seq, stats.first_seq, stats.pending) == (1500, 1501, 500)
    with sqlite3.connect(store._path) as conn:  # type: ignore[attr-defined]
        (size,) = conn.execute("SELECT SUM(length(body)) FROM events").fetchone()
        (acked,) = conn.execute("SELECT value FROM meta WHERE key = 'acked_seq'").fetchone()
    assert stats.bytes == size and acked == 1500
    assert stats.commits_total == commits  # acks are not counted as enqueue commits
    assert [e.seq for e in await store.read_batch(0, 1, 10**6)] == [1501]
