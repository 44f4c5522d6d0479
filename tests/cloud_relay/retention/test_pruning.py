"""Retention on a large store: posted and reconciled rows go in small batches while ingest and
posting carry on; dead letters, pending postings and newer rows stay.

``RETENTION_EVENTS`` sets the size of the filled store (default 200,000 to keep the run short;
the figure asked of the relay is 1,000,000: ``RETENTION_EVENTS=1000000``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import InboxEvent
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.posting.store import NewPosting
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.model import Report
from cloud_relay.retention.config import RetentionConfig
from cloud_relay.retention.pruner import Pruner
from cloud_relay.retention.sqlite import SqlitePruner
from cloud_relay.storage.timestamps import format_utc
from wire.ids import new_event_id

pytestmark = pytest.mark.timeout(600)
EVENTS = int(os.environ.get("RETENTION_EVENTS", "200000"))
NOW = datetime(2026, 6, 1, tzinfo=UTC)
OLD = NOW - timedelta(days=60)


def fill(path: Path, count: int) -> None:
    """``count`` old events of gateway ``old``, posted and applied 60 days ago (test set-up:
    straight into the tables, as the inbox and writer would have left them)."""
    db = sqlite3.connect(path)
    with db:
        db.execute("INSERT INTO gateways (gateway_id, acked_seq) VALUES ('old', ?)", (count,))
        db.execute(
            "INSERT INTO posting_cursor (gateway_id, routed_seq) VALUES ('old', ?)", (count,)
        )
        stamp = format_utc(OLD)
        for start in range(1, count + 1, 50_000):
            seqs = range(start, min(count, start + 49_999) + 1)
            ids = [f"old-{s}" for s in seqs]
            body = b'{"type":"production.reported","data":{"order":"MO","qty":1}}'
            db.executemany(
                "INSERT INTO events (gateway_id, seq, id, type, occurred_at, received_at, key_id,"
                " body) VALUES ('old', ?, ?, 'production.reported', ?, ?, 'k', ?)",
                [(s, i, stamp, stamp, body) for s, i in zip(seqs, ids, strict=True)],
            )
            db.executemany(
                "INSERT INTO postings (event_id, gateway_id, seq, order_key, type, occurred_at,"
                " body, state, applied_at, effect) VALUES (?, 'old', ?, 'mo:MO',"
                " 'production.reported', ?, ?, 'applied', ?, '{}')",
                [(i, s, stamp, body, stamp) for s, i in zip(seqs, ids, strict=True)],
            )
        # One applied posting kept by a dead letter (its replay), and one still pending.
        db.execute("UPDATE postings SET state = 'dead' WHERE seq = 1")
        db.execute(
            "INSERT INTO dead_letters (pid, event_id, gateway_id, seq, order_key, type,"
            " occurred_at, body, error, failed_since, attempts, dead_at, status)"
            " SELECT pid, event_id, gateway_id, seq, order_key, type, occurred_at, body, 'x', ?,"
            " 1, ?, 'dead' FROM postings WHERE seq = 1",
            (stamp, stamp),
        )
        db.execute("UPDATE postings SET state = 'pending', applied_at = NULL WHERE seq = 2")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


@dataclass
class Stores:
    inbox: SqliteInbox
    posting: SqlitePostingStore
    history: SqliteReportStore
    pruner: SqlitePruner


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    path = tmp_path / "relay.db"
    s = Stores(
        SqliteInbox(path, durability="process"),
        SqlitePostingStore(path, durability="process"),
        SqliteReportStore(path, durability="process"),
        SqlitePruner(path, durability="process"),
    )
    for store in (s.inbox, s.posting, s.history, s.pruner):
        await store.open()
    await asyncio.to_thread(fill, path, EVENTS)
    yield s
    for store in (s.inbox, s.posting, s.history, s.pruner):
        await store.close()


async def _reconciled(history: SqliteReportStore, at: datetime) -> None:
    run = await history.start(at, {})
    await history.finish(Report(run, at, at, "complete", {}, (), {}, {}))


def _count(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


async def test_nothing_goes_before_a_complete_reconcile_run(stores: Stores) -> None:
    pruner = Pruner(stores.pruner, stores.history, RetentionConfig(batch=1000), clock=lambda: NOW)
    assert await pruner.run_once() == 0
    await _reconciled(stores.history, OLD - timedelta(days=1))  # older than every posting
    assert await pruner.run_once() == 0


async def test_pruning_keeps_ingest_and_posting_going(stores: Stores, tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    await _reconciled(stores.history, NOW - timedelta(hours=1))
    pruner = Pruner(stores.pruner, stores.history, RetentionConfig(batch=500), clock=lambda: NOW)
    pruning = asyncio.create_task(pruner.run_once())
    progress: list[int] = []
    seq = 0
    while not pruning.done() or seq < 50:
        seq += 1
        event_id = new_event_id()
        body = json.dumps(
            {"type": "production.reported", "data": {"order": "NEW", "qty": 1}}
        ).encode()
        await stores.inbox.store_batch(
            "new", "k", seq, [InboxEvent(event_id, seq, "production.reported", NOW, body)]
        )
        await stores.posting.add_postings(
            "new",
            seq,
            [NewPosting(event_id, "new", seq, "mo:NEW", "production.reported", NOW, body)],
        )
        (posting,) = await stores.posting.pending("mo:NEW", 1)
        await stores.posting.mark_applied("mo:NEW", [posting.pid], {}, {posting.pid: {}}, NOW)
        progress.append(pruner.stats().postings_pruned)
    removed = await pruning
    assert removed == EVENTS - 2
    # Ingest and posting went on while pruning was under way, not only before or after it.
    assert any(0 < p < EVENTS - 2 for p in progress)
    assert _count(path, "SELECT count(*) FROM events WHERE gateway_id = 'new'") == seq
    assert _count(path, "SELECT count(*) FROM postings WHERE gateway_id = 'new'") == seq
    # Kept: the dead letter's posting and event, the pending one, the dead letter itself.
    assert _count(path, "SELECT count(*) FROM events WHERE gateway_id = 'old'") == 2
    assert _count(path, "SELECT count(*) FROM postings WHERE gateway_id = 'old'") == 2
    assert _count(path, "SELECT count(*) FROM dead_letters") == 1
    size = await stores.pruner.size()
    assert size.bytes > 0 and size.oldest_event_at is not None
