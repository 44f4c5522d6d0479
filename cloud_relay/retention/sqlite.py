"""Pruning a SQLite relay database in small transactions.

One batch takes the oldest applied postings that are older than the cutoff and not tied to a
dead letter, and deletes them with their inbox events, in one short ``BEGIN IMMEDIATE``
transaction: ingest and the writer wait at most one batch. Pending postings, dead letters (and
the postings they name), the audit log, telemetry and anything newer stay.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cloud_relay.storage.schema import Schema
from cloud_relay.storage.sqlite import SqliteStore, fetch_rows
from cloud_relay.storage.timestamps import format_utc, parse_utc

_SCHEMA = Schema("retention", ())


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one batch removed."""

    postings: int
    events: int


@dataclass(frozen=True, slots=True)
class DatabaseSize:
    """For the admin page: the file's size and the oldest event still kept."""

    bytes: int
    events: int | None
    oldest_event_at: datetime | None


class SqlitePruner(SqliteStore):
    """Removes posted, reconciled rows from the relay's SQLite file."""

    def __init__(self, path: Path, *, durability: Literal["power", "process"] = "power") -> None:
        super().__init__(
            path,
            _SCHEMA,
            label="retention",
            durability=durability,
            busy_timeout_seconds=5.0,
            user_version=False,
        )

    async def prune_batch(self, cutoff: datetime, batch: int) -> Pruned:
        """Remove up to ``batch`` applied postings applied before ``cutoff``, with their events."""

        async def work(db: Any) -> Pruned:
            rows = await fetch_rows(
                db,
                "SELECT pid, event_id FROM postings WHERE state = 'applied' AND applied_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM dead_letters d"
                " WHERE d.pid = postings.pid OR d.replay_pid = postings.pid)"
                " ORDER BY pid LIMIT ?",
                (format_utc(cutoff), batch),
            )
            if not rows:
                return Pruned(0, 0)
            pids = [r[0] for r in rows]
            ids = [r[1] for r in rows]
            marks = ",".join("?" * len(rows))
            events = await db.execute(f"DELETE FROM events WHERE id IN ({marks})", ids)
            await db.execute(f"DELETE FROM postings WHERE pid IN ({marks})", pids)
            return Pruned(len(pids), events.rowcount)

        return await self._write(work)

    async def size(self) -> DatabaseSize:
        """The database's size in bytes and its oldest kept event (cheap: no full scan)."""
        async with self._connection() as db:
            pages = (await fetch_rows(db, "PRAGMA page_count"))[0][0]
            page_size = (await fetch_rows(db, "PRAGMA page_size"))[0][0]
            oldest = await fetch_rows(db, "SELECT received_at FROM events ORDER BY rowid LIMIT 1")
        wal = self._path.with_name(self._path.name + "-wal")
        wal_bytes = wal.stat().st_size if wal.exists() else 0
        return DatabaseSize(
            int(pages) * int(page_size) + wal_bytes,
            None,
            parse_utc(oldest[0][0]) if oldest else None,
        )
