"""Dead letters, their replay and discard, and the audit log, in SQLite.

The ``DeadLetterBook`` role of :class:`~cloud_relay.posting.sqlite.SqlitePostingStore`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import aiosqlite

from cloud_relay.posting import rows as row_io
from cloud_relay.posting.sqlite_base import (
    _AUDIT_COLUMNS,
    _DEAD_LETTER_COLUMNS,
    _EVENT_COLUMNS,
    _NO_PARKING,
    SqlitePostingBase,
    _advance_head,
    _ts,
)
from cloud_relay.posting.store import (
    AuditEntry,
    DeadLetter,
    check_status,
)
from cloud_relay.storage.sqlite import fetch_rows
from cloud_relay.storage.timestamps import parse_utc


class SqliteDeadLetters(SqlitePostingBase):
    """Dead letters and the audit log."""

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
