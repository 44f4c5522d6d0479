"""The posting store in the inbox's SQLite file: its own connection and tables, one writer.

The CLI may open the same file from another process to list, replay or discard dead letters
while the relay runs: every write is a ``BEGIN IMMEDIATE`` transaction and waits up to the busy
timeout for the other side's. The writer lock is an ``flock`` on a file beside the database, so
it is released by the kernel when the process dies.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from cloud_relay.posting import rows as row_io
from cloud_relay.posting.store import (
    OrderState,
    aware,
)
from cloud_relay.storage.schema import Schema
from cloud_relay.storage.sqlite import SqliteStore, fetch_rows
from cloud_relay.storage.timestamps import format_utc, parse_utc

logger = logging.getLogger(__name__)

# Each entry brings the schema from version N to N + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE posting_cursor (
            gateway_id TEXT PRIMARY KEY,
            routed_seq INTEGER NOT NULL
        )""",
        """CREATE TABLE postings (
            pid INTEGER PRIMARY KEY AUTOINCREMENT,
            event_id TEXT NOT NULL,
            gateway_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            order_key TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            body BLOB NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'applied', 'dead')),
            applied_at TEXT,
            effect TEXT
        )""",
        "CREATE INDEX postings_order ON postings (order_key, state, pid)",
        "CREATE INDEX postings_state ON postings (state, pid)",
        """CREATE TABLE orders (
            order_key TEXT PRIMARY KEY,
            ledger TEXT NOT NULL DEFAULT '{}',
            intent TEXT,
            parked INTEGER NOT NULL DEFAULT 0,
            park_reason TEXT,
            parked_since TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT,
            updated_at TEXT NOT NULL
        )""",
        "CREATE INDEX orders_parked ON orders (parked_since) WHERE parked",
        "CREATE INDEX orders_updated ON orders (updated_at)",
        """CREATE TABLE dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pid INTEGER NOT NULL REFERENCES postings (pid),
            event_id TEXT NOT NULL,
            gateway_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            order_key TEXT NOT NULL,
            type TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            body BLOB NOT NULL,
            error TEXT NOT NULL,
            failed_since TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            dead_at TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'dead'
                CHECK (status IN ('dead', 'replayed', 'discarded')),
            resolved_at TEXT,
            resolved_by TEXT,
            resolution TEXT,
            replay_pid INTEGER REFERENCES postings (pid)
        )""",
        "CREATE INDEX dead_letters_status ON dead_letters (status, id)",
        "CREATE INDEX dead_letters_order ON dead_letters (order_key, id)",
        """CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL CHECK (action IN ('replay', 'discard')),
            dead_letter_id INTEGER NOT NULL REFERENCES dead_letters (id),
            order_key TEXT NOT NULL,
            event_id TEXT NOT NULL,
            reason TEXT
        )""",
    ),
    # Each order's oldest pending posting, kept as postings come and go, so finding the next
    # orders to post does not group a whole backlog (0.5 s at 1,000,000 pending).
    (
        """CREATE TABLE order_queue (
            order_key TEXT PRIMARY KEY,
            head_pid INTEGER NOT NULL
        )""",
        "CREATE INDEX order_queue_head ON order_queue (head_pid)",
        "INSERT INTO order_queue (order_key, head_pid)"
        " SELECT order_key, min(pid) FROM postings WHERE state = 'pending' GROUP BY order_key",
    ),
)

_SCHEMA = Schema("posting", _MIGRATIONS)
_EVENT_COLUMNS = row_io.EVENT_COLUMNS
_POSTING_COLUMNS = row_io.POSTING_COLUMNS
_ORDER_FIELDS = row_io.ORDER_FIELDS
_DEAD_LETTER_COLUMNS = row_io.DEAD_LETTER_COLUMNS
_AUDIT_COLUMNS = row_io.AUDIT_COLUMNS

_NO_PARKING = (
    "parked = 0, park_reason = NULL, parked_since = NULL, attempts = 0, next_attempt_at = NULL"
)


def _ts(value: datetime) -> str:
    """``value`` as stored; ValueError when naive, since a wall time is no instant."""
    return format_utc(aware(value))


class SqlitePostingBase(SqliteStore):
    """What the roles of the posting store share: the connection, schema and order reads."""

    def __init__(
        self,
        path: Path,
        *,
        durability: Literal["power", "process"] = "power",
        busy_timeout_seconds: float = 5.0,
    ) -> None:
        super().__init__(
            path,
            _SCHEMA,
            label="posting store",
            durability=durability,
            busy_timeout_seconds=busy_timeout_seconds,
            user_version=False,
            named_rows=True,
        )
        self._lock_path = path.with_name(path.name + ".writer-lock")
        self._lock_fd: int | None = None

    async def _cursor(self, db: aiosqlite.Connection, gateway_id: str) -> int:
        rows = await fetch_rows(
            db, "SELECT routed_seq FROM posting_cursor WHERE gateway_id = ?", (gateway_id,)
        )
        return int(rows[0][0]) if rows else 0

    async def _order_state(self, db: aiosqlite.Connection, order_key: str) -> OrderState:
        rows = await fetch_rows(
            db,
            f"SELECT k.order_key, {_ORDER_FIELDS}, {row_io.pending_of('k')}"
            " FROM (SELECT ? AS order_key) k LEFT JOIN orders o USING (order_key)",
            (order_key,),
        )
        return row_io.order(rows[0], parse_utc)

    async def _orders(self, tail: str, params: Sequence[Any]) -> list[OrderState]:
        rows = await self._fetch(
            f"SELECT o.order_key, {_ORDER_FIELDS}, {row_io.pending_of('o')} FROM orders o {tail}",
            params,
        )
        return [row_io.order(row, parse_utc) for row in rows]

    async def _execute(self, sql: str, params: Sequence[Any]) -> None:
        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(sql, params)

        await self._write(work)


async def _advance_head(db: aiosqlite.Connection, order_key: str) -> None:
    """Point the order's queue entry at its oldest pending posting, or drop it when none is."""
    rows = await fetch_rows(
        db,
        "SELECT min(pid) FROM postings WHERE order_key = ? AND state = 'pending'",
        (order_key,),
    )
    head = rows[0][0]
    if head is None:
        await db.execute("DELETE FROM order_queue WHERE order_key = ?", (order_key,))
    else:
        await db.execute(
            "UPDATE order_queue SET head_pid = ? WHERE order_key = ?", (head, order_key)
        )
