"""Throughput of InboxStore.store_batch for SqliteInbox and PostgresInbox, beside baselines.

Run by hand: ``python3 bench/inbox_store.py [--batches 40] [--batch-size 1000] [--rounds 3]
[--no-postgres]``.
Baselines in the same run: raw ``sqlite3`` executemany into the same schema (same pragmas), and
the three ways to put a batch into PostgreSQL (COPY, executemany, INSERT … SELECT unnest).
Needs PostgreSQL at ``BENCH_POSTGRES`` (default postgres@127.0.0.1:5432); it creates and drops
its own database. Figures are medians over the rounds; CPU is this process's (both threads).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud_relay.inbox.postgres import PostgresInbox
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import InboxEvent, InboxStore
from wire.ids import new_event_id

ADMIN_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
EPOCH = datetime(2025, 3, 1, tzinfo=UTC)
DURABILITIES: tuple[tuple[Literal["power", "process"], str], ...] = (
    ("power", "FULL"),
    ("process", "NORMAL"),
)


def make_events(count: int, gateway_id: str) -> list[InboxEvent]:
    """``count`` events of about 250 bytes, like a production report."""
    out = []
    for seq in range(1, count + 1):
        event_id = new_event_id()
        occurred_at = EPOCH + timedelta(milliseconds=seq)
        body = json.dumps(
            {
                "id": event_id,
                "gateway_id": gateway_id,
                "seq": seq,
                "type": "production.reported",
                "occurred_at": occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "source": "opcua:ns=2;s=Line1.Counter",
                "data": {"order": "WH/MO/00042", "qty": 1.0, "workcenter": "LINE-1"},
            },
            separators=(",", ":"),
        ).encode()
        out.append(InboxEvent(event_id, seq, "production.reported", occurred_at, body))
    return out


class Timing:
    """Wall and CPU seconds of a block, as events per second."""

    def __init__(self, events: int) -> None:
        self.events = events
        self.wall = 0.0
        self.cpu = 0.0

    def __enter__(self) -> Timing:
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.cpu = time.process_time() - self._cpu


async def bench_store(store: InboxStore, batches: list[list[InboxEvent]], gateway: str) -> Timing:
    timing = Timing(sum(len(b) for b in batches))
    with timing:
        for batch in batches:
            await store.store_batch(gateway, "bench-key", batch[0].seq, batch)
    return timing


def bench_raw_sqlite(path: Path, batches: list[list[InboxEvent]], synchronous: str) -> Timing:
    """The floor: sqlite3 executemany of the same rows into the same schema, no asyncio."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(
        "CREATE TABLE events (gateway_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL"
        " UNIQUE, type TEXT NOT NULL, occurred_at TEXT NOT NULL, received_at TEXT NOT NULL,"
        " key_id TEXT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (gateway_id, seq))"
    )
    now = datetime.now(UTC).isoformat()
    timing = Timing(sum(len(b) for b in batches))
    with timing:
        for batch in batches:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    ("gw", e.seq, e.id, e.type, e.occurred_at.isoformat(), now, "k", e.body)
                    for e in batch
                ],
            )
            conn.execute("COMMIT")
    conn.close()
    return timing


InsertFn = Callable[[asyncpg.Connection, list[InboxEvent], str, datetime], Awaitable[object]]
COLUMNS = ["gateway_id", "seq", "id", "type", "occurred_at", "received_at", "key_id", "body"]


async def insert_copy(
    conn: asyncpg.Connection, b: list[InboxEvent], gw: str, now: datetime
) -> None:
    records = [(gw, e.seq, e.id, e.type, e.occurred_at, now, "k", e.body) for e in b]
    await conn.copy_records_to_table("events", records=records, columns=COLUMNS)


async def insert_many(
    conn: asyncpg.Connection, b: list[InboxEvent], gw: str, now: datetime
) -> None:
    await conn.executemany(
        "INSERT INTO events VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [(gw, e.seq, e.id, e.type, e.occurred_at, now, "k", e.body) for e in b],
    )


async def insert_unnest(
    conn: asyncpg.Connection, b: list[InboxEvent], gw: str, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO events SELECT $1, u.s, u.i, u.t, u.o, $2, 'k', u.b FROM unnest($3::bigint[],"
        " $4::uuid[], $5::text[], $6::timestamptz[], $7::bytea[]) AS u(s, i, t, o, b)",
        gw,
        now,
        [e.seq for e in b],
        [e.id for e in b],
        [e.type for e in b],
        [e.occurred_at for e in b],
        [e.body for e in b],
    )


async def bench_pg_insert(
    url: str, fn: InsertFn, batches: list[list[InboxEvent]], gateway: str
) -> Timing:
    """One way of inserting, each batch in its own transaction, on the inbox's own schema."""
    conn = await asyncpg.connect(url)
    timing = Timing(sum(len(b) for b in batches))
    with timing:
        for batch in batches:
            async with conn.transaction():
                await fn(conn, batch, gateway, datetime.now(UTC))
    await conn.close()
    return timing


def median_rate(timings: list[Timing]) -> tuple[float, float]:
    wall = statistics.median(t.events / t.wall for t in timings)
    cpu = statistics.median(t.events / t.cpu for t in timings if t.cpu > 0)
    return wall, cpu


async def measure(
    batches: list[list[InboxEvent]], rounds: int, postgres: bool
) -> dict[str, list[Timing]]:
    """Every store and baseline over the same batches, ``rounds`` times."""
    results: dict[str, list[Timing]] = {}
    db_name = f"bench_inbox_{uuid.uuid4().hex[:10]}"
    db_url = urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{db_name}"))
    admin = await asyncpg.connect(ADMIN_URL) if postgres else None
    if admin is not None:
        await admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(rounds):
                for durability, sync in DURABILITIES:
                    results.setdefault(f"raw sqlite3, synchronous={sync}", []).append(
                        bench_raw_sqlite(Path(tmp) / f"raw-{sync}-{n}.db", batches, sync)
                    )
                    sqlite_inbox = SqliteInbox(
                        Path(tmp) / f"inbox-{sync}-{n}.db", durability=durability
                    )
                    await sqlite_inbox.open()
                    results.setdefault(f"SqliteInbox, durability={durability}", []).append(
                        await bench_store(sqlite_inbox, batches, "gw")
                    )
                    await sqlite_inbox.close()
                if admin is None:
                    continue
                pg_inbox = PostgresInbox(db_url, pool_size=2)
                await pg_inbox.open()
                results.setdefault("PostgresInbox (COPY)", []).append(
                    await bench_store(pg_inbox, make_batches(batches), f"gw-{n}")
                )
                await pg_inbox.close()
                for name, fn in (
                    ("COPY", insert_copy),
                    ("executemany", insert_many),
                    ("unnest", insert_unnest),
                ):
                    results.setdefault(f"raw asyncpg {name}", []).append(
                        await bench_pg_insert(db_url, fn, make_batches(batches), f"raw-{name}-{n}")
                    )
    finally:
        if admin is not None:
            await admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            await admin.close()
    return results


def run(
    batches: int = 40, batch_size: int = 1000, rounds: int = 3, postgres: bool = True
) -> dict[str, Any]:
    """Measure and print the table; returns events/s (wall) and events per CPU-second by row."""
    total = batches * batch_size
    events = make_events(total, "gw")
    split = [events[i : i + batch_size] for i in range(0, total, batch_size)]
    results = asyncio.run(measure(split, rounds, postgres))
    print(f"{batches} batches x {batch_size} events, median of {rounds} rounds")
    print(f"{'what':42} {'events/s (wall)':>16} {'events per CPU-s':>17}")
    out: dict[str, Any] = {"events": total, "batch_size": batch_size, "rows": {}}
    for name, timings in results.items():
        wall, cpu = median_rate(timings)
        out["rows"][name] = {"rate": wall, "events_per_cpu_second": cpu}
        print(f"{name:42} {wall:16,.0f} {cpu:17,.0f}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-postgres", action="store_true", help="the SQLite rows only")
    args = parser.parse_args()
    run(args.batches, args.batch_size, args.rounds, not args.no_postgres)


def make_batches(batches: list[list[InboxEvent]]) -> list[list[InboxEvent]]:
    """The same shape with fresh ids, since event ids are unique across the whole inbox."""
    return [
        [InboxEvent(new_event_id(), e.seq, e.type, e.occurred_at, e.body) for e in batch]
        for batch in batches
    ]


if __name__ == "__main__":
    main()
