"""The posting store in the inbox's SQLite file: its own connection and tables, one writer.

The CLI may open the same file from another process to list, replay or discard dead letters
while the relay runs: every write is a ``BEGIN IMMEDIATE`` transaction and waits up to the busy
timeout for the other side's. The writer lock is an ``flock`` on a file beside the database, so
it is released by the kernel when the process dies.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import aiosqlite

from cloud_relay.errors import ConfigError, TransientError
from cloud_relay.posting import rows as row_io
from cloud_relay.posting.store import (
    AuditEntry,
    DeadLetter,
    NewPosting,
    OrderState,
    Posting,
    PostingCounts,
    aware,
    check_postings,
    check_status,
    decode_json,
    encode_json,
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


class SqlitePostingStore(SqliteStore):
    """:class:`~cloud_relay.posting.store.PostingStore` in one SQLite file (WAL)."""

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

    async def close(self) -> None:
        """Release the writer lock and close the connection after any call in flight."""
        await self.release_writer_lock()
        await super().close()

    async def acquire_writer_lock(self) -> bool:
        """``flock`` the lock file beside the database without waiting."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError as exc:
            raise ConfigError(f"{self._where}: cannot create {self._lock_path}: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"{self._where}: cannot open {self._lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise TransientError(f"{self._where}: cannot lock {self._lock_path}: {exc}") from exc
        self._lock_fd = fd
        return True

    async def release_writer_lock(self) -> None:
        """Unlock and close the lock file (closing alone would release it too)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    async def writer_lock_held(self) -> bool:
        """Whether this instance holds the ``flock`` of the file now at the lock path: one
        deleted or replaced under it could be locked by another writer, so that counts as lost."""
        if self._lock_fd is None:
            return False
        try:
            same = os.stat(self._lock_path).st_ino == os.fstat(self._lock_fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            logger.warning("%s: writer lock file %s was replaced", self._where, self._lock_path)
            await self.release_writer_lock()
        return same

    async def route_cursor(self, gateway_id: str) -> int:
        """Highest seq of the gateway routed into postings (0 when none)."""
        async with self._connection() as db:
            return await self._cursor(db, gateway_id)

    async def route_cursors(self) -> dict[str, int]:
        """The route cursor of every gateway routed so far."""
        rows = await self._fetch("SELECT gateway_id, routed_seq FROM posting_cursor")
        return {row[0]: row[1] for row in rows}

    async def _cursor(self, db: aiosqlite.Connection, gateway_id: str) -> int:
        rows = await fetch_rows(
            db, "SELECT routed_seq FROM posting_cursor WHERE gateway_id = ?", (gateway_id,)
        )
        return int(rows[0][0]) if rows else 0

    async def add_postings(
        self, gateway_id: str, through_seq: int, postings: Sequence[NewPosting]
    ) -> int:
        """Queue the postings past the cursor and advance it, in one transaction."""
        check_postings(gateway_id, through_seq, postings)

        async def work(db: aiosqlite.Connection) -> int:
            cursor = await self._cursor(db, gateway_id)
            fresh = [p for p in postings if p.seq > cursor]
            rows = [
                (p.event_id, gateway_id, p.seq, p.order_key, p.type, _ts(p.occurred_at), p.body)
                for p in fresh
            ]
            before = (await fetch_rows(db, "SELECT coalesce(max(pid), 0) FROM postings"))[0][0]
            await db.executemany(
                f"INSERT INTO postings ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
            await db.execute(
                "INSERT INTO order_queue (order_key, head_pid)"
                " SELECT order_key, min(pid) FROM postings WHERE pid > ? GROUP BY order_key"
                " ON CONFLICT (order_key) DO NOTHING",
                (before,),
            )
            await db.execute(
                "INSERT INTO posting_cursor (gateway_id, routed_seq) VALUES (?, ?)"
                " ON CONFLICT (gateway_id)"
                " DO UPDATE SET routed_seq = max(routed_seq, excluded.routed_seq)",
                (gateway_id, through_seq),
            )
            return len(fresh)

        return await self._write(work)

    async def ready_orders(
        self, now: datetime, limit: int, exclude: Collection[str] = ()
    ) -> list[str]:
        """Order keys with pending postings, not parked or due, by their oldest pending pid."""
        rows = await self._fetch(
            "SELECT q.order_key FROM order_queue q LEFT JOIN orders o USING (order_key)"
            " WHERE (coalesce(o.parked, 0) = 0 OR o.next_attempt_at <= ?1)"
            " AND q.order_key NOT IN (SELECT value FROM json_each(?2))"
            " ORDER BY q.head_pid LIMIT ?3",
            (_ts(now), json.dumps(list(exclude)), limit),
        )
        return [row[0] for row in rows]

    async def next_wakeup(self) -> datetime | None:
        """The earliest retry time of a parked order with pending postings."""
        rows = await self._fetch(
            "SELECT min(o.next_attempt_at) FROM orders o WHERE o.parked AND EXISTS"
            " (SELECT 1 FROM postings p WHERE p.order_key = o.order_key AND p.state = 'pending')"
        )
        return parse_utc(rows[0][0])

    async def pending(self, order_key: str, limit: int) -> list[Posting]:
        """Pending postings of the order in pid order, at most ``limit``."""
        rows = await self._fetch(
            f"SELECT {_POSTING_COLUMNS} FROM postings"
            " WHERE order_key = ? AND state = 'pending' ORDER BY pid LIMIT ?",
            (order_key, limit),
        )
        return [row_io.posting(row, parse_utc) for row in rows]

    async def order_state(self, order_key: str) -> OrderState:
        """The order's state (defaults for an unknown order)."""
        async with self._connection() as db:
            return await self._order_state(db, order_key)

    async def _order_state(self, db: aiosqlite.Connection, order_key: str) -> OrderState:
        rows = await fetch_rows(
            db,
            f"SELECT k.order_key, {_ORDER_FIELDS}, {row_io.pending_of('k')}"
            " FROM (SELECT ? AS order_key) k LEFT JOIN orders o USING (order_key)",
            (order_key,),
        )
        return row_io.order(rows[0], parse_utc)

    async def save_intent(
        self, order_key: str, intent: dict[str, Any] | None, now: datetime
    ) -> None:
        """Record (or clear) the intent of the order's next round of Odoo calls."""
        params = (order_key, None if intent is None else encode_json(intent), _ts(now))
        await self._execute(
            "INSERT INTO orders (order_key, intent, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (order_key)"
            " DO UPDATE SET intent = excluded.intent, updated_at = excluded.updated_at",
            params,
        )

    async def save_ledger(self, order_key: str, ledger: dict[str, Any], now: datetime) -> None:
        """Replace the order's ledger, leaving the rest of its state."""
        await self._execute(
            "INSERT INTO orders (order_key, ledger, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (order_key)"
            " DO UPDATE SET ledger = excluded.ledger, updated_at = excluded.updated_at",
            (order_key, encode_json(ledger), _ts(now)),
        )

    async def mark_applied(
        self,
        order_key: str,
        pids: Sequence[int],
        ledger: dict[str, Any],
        effects: Mapping[int, dict[str, Any]],
        now: datetime,
    ) -> None:
        """Apply the postings, save the ledger, clear intent and parking, in one transaction."""
        at = _ts(now)
        wanted = sorted(set(pids))
        updates = [("applied", at, encode_json(effects.get(pid) or {}), pid) for pid in wanted]
        ledger_json = encode_json(ledger)

        async def work(db: aiosqlite.Connection) -> None:
            found = await fetch_rows(
                db,
                "SELECT pid FROM postings WHERE order_key = ? AND state = 'pending'"
                " AND pid IN (SELECT value FROM json_each(?))",
                (order_key, json.dumps(wanted)),
            )
            missing = set(wanted) - {row[0] for row in found}
            if missing:
                raise ValueError(f"order {order_key}: postings {sorted(missing)} are not pending")
            await db.executemany(
                "UPDATE postings SET state = ?, applied_at = ?, effect = ? WHERE pid = ?", updates
            )
            await _advance_head(db, order_key)
            await db.execute(
                "INSERT INTO orders (order_key, ledger, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (order_key) DO UPDATE SET ledger = excluded.ledger, intent = NULL,"
                f" {_NO_PARKING}, updated_at = excluded.updated_at",
                (order_key, ledger_json, at),
            )

        await self._write(work)

    async def park(
        self, order_key: str, reason: str, next_attempt_at: datetime, now: datetime
    ) -> OrderState:
        """Count a failed attempt and hold the order until ``next_attempt_at``."""
        params = (order_key, reason, _ts(now), _ts(next_attempt_at), _ts(now))

        async def work(db: aiosqlite.Connection) -> OrderState:
            await db.execute(
                "INSERT INTO orders (order_key, parked, park_reason, parked_since, attempts,"
                " next_attempt_at, updated_at) VALUES (?, 1, ?, ?, 1, ?, ?)"
                " ON CONFLICT (order_key) DO UPDATE SET parked = 1,"
                " park_reason = excluded.park_reason,"
                " parked_since = coalesce(orders.parked_since, excluded.parked_since),"
                " attempts = orders.attempts + 1, next_attempt_at = excluded.next_attempt_at,"
                " updated_at = excluded.updated_at",
                params,
            )
            return await self._order_state(db, order_key)

        return await self._write(work)

    async def unpark(self, order_key: str) -> None:
        """End the order's parking (reason, start, attempts and retry time too)."""
        await self._execute(f"UPDATE orders SET {_NO_PARKING} WHERE order_key = ?", (order_key,))

    async def dead_letter(self, order_key: str, pid: int, error: str, now: datetime) -> int:
        """Move a pending posting to the dead letters and clear the order's parking."""
        at = _ts(now)

        async def work(db: aiosqlite.Connection) -> int:
            moved = await db.execute(
                "UPDATE postings SET state = 'dead'"
                " WHERE pid = ? AND order_key = ? AND state = 'pending'",
                (pid, order_key),
            )
            if moved.rowcount != 1:
                raise ValueError(f"order {order_key}: posting {pid} is not pending")
            await _advance_head(db, order_key)
            parking = await fetch_rows(
                db, "SELECT parked_since, attempts FROM orders WHERE order_key = ?", (order_key,)
            )
            failed_since, attempts = (parking[0][0] or at, parking[0][1]) if parking else (at, 0)
            inserted = await db.execute(
                f"INSERT INTO dead_letters (pid, {_EVENT_COLUMNS}, error, failed_since, attempts,"
                f" dead_at) SELECT pid, {_EVENT_COLUMNS}, ?, ?, ?, ? FROM postings WHERE pid = ?",
                (error, failed_since, attempts, at, pid),
            )
            await db.execute(
                f"UPDATE orders SET intent = NULL, {_NO_PARKING}, updated_at = ?"
                " WHERE order_key = ?",
                (at, order_key),
            )
            assert inserted.lastrowid is not None
            return inserted.lastrowid

        return await self._write(work)

    async def list_dead_letters(
        self, *, status: str | None = "dead", order_key: str | None = None, limit: int = 1000
    ) -> list[DeadLetter]:
        """Dead letters in id order; ``status`` None lists every status."""
        check_status(status)
        rows = await self._fetch(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"
            " WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR order_key = ?2)"
            " ORDER BY id LIMIT ?3",
            (status, order_key, limit),
        )
        return [row_io.dead_letter(row, parse_utc) for row in rows]

    async def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        """One dead letter, whatever its status."""
        rows = await self._fetch(
            f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = ?", (dead_letter_id,)
        )
        return row_io.dead_letter(rows[0], parse_utc) if rows else None

    async def replay(
        self, dead_letter_ids: Sequence[int], actor: str, reason: str | None, now: datetime
    ) -> list[int]:
        """Queue the dead letters' events again and unpark their orders, in one transaction."""
        at = _ts(now)

        async def work(db: aiosqlite.Connection) -> list[int]:
            replayed: list[int] = []
            for dead_letter_id in sorted(set(dead_letter_ids)):
                rows = await fetch_rows(
                    db,
                    f"SELECT {_EVENT_COLUMNS} FROM dead_letters WHERE id = ? AND status = 'dead'",
                    (dead_letter_id,),
                )
                if not rows:
                    continue
                event, order_key = tuple(rows[0]), rows[0]["order_key"]
                inserted = await db.execute(
                    f"INSERT INTO postings ({_EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    event,
                )
                await db.execute(
                    "INSERT INTO order_queue (order_key, head_pid) VALUES (?, ?)"
                    " ON CONFLICT (order_key) DO NOTHING",
                    (order_key, inserted.lastrowid),
                )
                await db.execute(
                    "UPDATE dead_letters SET status = 'replayed', resolved_at = ?,"
                    " resolved_by = ?, resolution = ?, replay_pid = ? WHERE id = ?",
                    (at, actor, reason, inserted.lastrowid, dead_letter_id),
                )
                await self._audit(db, at, actor, "replay", dead_letter_id, rows[0], reason)
                await db.execute(
                    f"UPDATE orders SET {_NO_PARKING}, updated_at = ? WHERE order_key = ?",
                    (at, order_key),
                )
                replayed.append(dead_letter_id)
            return replayed

        return await self._write(work)

    async def discard(self, dead_letter_id: int, actor: str, reason: str, now: datetime) -> bool:
        """Resolve a dead letter without posting it; False when it is not dead."""
        at = _ts(now)

        async def work(db: aiosqlite.Connection) -> bool:
            rows = await fetch_rows(
                db,
                "SELECT order_key, event_id FROM dead_letters WHERE id = ? AND status = 'dead'",
                (dead_letter_id,),
            )
            if not rows:
                return False
            await db.execute(
                "UPDATE dead_letters SET status = 'discarded', resolved_at = ?, resolved_by = ?,"
                " resolution = ? WHERE id = ?",
                (at, actor, reason, dead_letter_id),
            )
            await self._audit(db, at, actor, "discard", dead_letter_id, rows[0], reason)
            return True

        return await self._write(work)

    async def _audit(
        self,
        db: aiosqlite.Connection,
        at: str,
        actor: str,
        action: Literal["replay", "discard"],
        dead_letter_id: int,
        letter: sqlite3.Row,
        reason: str | None,
    ) -> None:
        await db.execute(
            f"INSERT INTO audit_log ({_AUDIT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?)",
            (at, actor, action, dead_letter_id, letter["order_key"], letter["event_id"], reason),
        )

    async def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        """Replays and discards, newest first."""
        rows = await self._fetch(
            f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT ?", (limit,)
        )
        return [row_io.audit(row, parse_utc) for row in rows]

    async def parked_orders(self) -> list[OrderState]:
        """Parked orders, the longest parked first."""
        return await self._orders("WHERE o.parked ORDER BY o.parked_since, o.order_key", ())

    async def orders(self, limit: int = 1000) -> list[OrderState]:
        """Every order with a stored state, most recently updated first."""
        return await self._orders("ORDER BY o.updated_at DESC, o.order_key LIMIT ?", (limit,))

    async def _orders(self, tail: str, params: Sequence[Any]) -> list[OrderState]:
        rows = await self._fetch(
            f"SELECT o.order_key, {_ORDER_FIELDS}, {row_io.pending_of('o')} FROM orders o {tail}",
            params,
        )
        return [row_io.order(row, parse_utc) for row in rows]

    async def counts(self) -> PostingCounts:
        """Postings by state, open dead letters and parked orders, from one snapshot."""
        rows = await self._fetch(
            "SELECT (SELECT count(*) FROM postings WHERE state = 'pending') AS pending,"
            " (SELECT count(*) FROM postings WHERE state = 'applied') AS applied,"
            " (SELECT count(*) FROM dead_letters WHERE status = 'dead') AS dead,"
            " (SELECT count(*) FROM orders WHERE parked) AS parked_orders"
        )
        return PostingCounts(
            pending=rows[0]["pending"],
            applied=rows[0]["applied"],
            dead=rows[0]["dead"],
            parked_orders=rows[0]["parked_orders"],
        )

    async def applied_effects(self, order_key: str) -> list[tuple[Posting, dict[str, Any]]]:
        """Applied postings of the order with their effects, in pid order."""
        rows = await self._fetch(
            f"SELECT {_POSTING_COLUMNS}, effect FROM postings"
            " WHERE order_key = ? AND state = 'applied' ORDER BY pid",
            (order_key,),
        )
        return [
            (row_io.posting(row, parse_utc), decode_json(row["effect"] or "{}")) for row in rows
        ]

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
