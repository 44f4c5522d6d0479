"""Dead letters, their replay and discard, and the audit log, in PostgreSQL.

The ``DeadLetterBook`` role of :class:`~cloud_relay.posting.postgres.PostgresPostingStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg

from cloud_relay.posting import rows as row_io
from cloud_relay.posting.postgres_base import (
    _AUDIT_COLUMNS,
    _DEAD_LETTER_COLUMNS,
    _EVENT_COLUMNS,
    _INSERT_LOCK,
    _NO_PARKING,
    Connection,
    PostgresPostingBase,
    _advance_head,
    _as_is,
)
from cloud_relay.posting.store import (
    AuditEntry,
    DeadLetter,
    aware,
    check_status,
)


class PostgresDeadLetters(PostgresPostingBase):
    """Dead letters and the audit log."""

    async def dead_letter(self, order_key: str, pid: int, error: str, now: datetime) -> int:
        """Move a pending posting to the dead letters and clear the order's parking."""
        aware(now)
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                moved = await conn.fetchval(
                    "UPDATE postings SET state = 'dead'"
                    " WHERE pid = $1 AND order_key = $2 AND state = 'pending' RETURNING pid",
                    pid,
                    order_key,
                )
                if moved is None:
                    raise ValueError(f"order {order_key}: posting {pid} is not pending")
                await _advance_head(conn, order_key)
                parking = await conn.fetchrow(
                    "SELECT parked_since, attempts FROM orders WHERE order_key = $1 FOR UPDATE",
                    order_key,
                )
                failed_since, attempts = now, 0
                if parking is not None:
                    failed_since = parking["parked_since"] or now
                    attempts = parking["attempts"]
                dead_letter_id: int = await conn.fetchval(
                    f"INSERT INTO dead_letters (pid, {_EVENT_COLUMNS}, error, failed_since,"
                    f" attempts, dead_at) SELECT pid, {_EVENT_COLUMNS}, $2, $3, $4, $5"
                    " FROM postings WHERE pid = $1 RETURNING id",
                    pid,
                    error,
                    failed_since,
                    attempts,
                    now,
                )
                await conn.execute(
                    f"UPDATE orders SET intent = NULL, {_NO_PARKING}, updated_at = $2"
                    " WHERE order_key = $1",
                    order_key,
                    now,
                )
        return dead_letter_id

    async def list_dead_letters(
        self, *, status: str | None = "dead", order_key: str | None = None, limit: int = 1000
    ) -> list[DeadLetter]:
        """Dead letters in id order; ``status`` None lists every status."""
        check_status(status)
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters"
                " WHERE ($1::text IS NULL OR status = $1)"
                " AND ($2::text IS NULL OR order_key = $2)"
                " ORDER BY id LIMIT $3",
                status,
                order_key,
                limit,
            )
        return [row_io.dead_letter(row, _as_is) for row in rows]

    async def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        """One dead letter, whatever its status."""
        with self._errors():
            row = await self._conn().fetchrow(
                f"SELECT {_DEAD_LETTER_COLUMNS} FROM dead_letters WHERE id = $1",
                dead_letter_id,
            )
        return row_io.dead_letter(row, _as_is) if row is not None else None

    async def replay(
        self, dead_letter_ids: Sequence[int], actor: str, reason: str | None, now: datetime
    ) -> list[int]:
        """Queue the dead letters' events again and unpark their orders, in one transaction."""
        aware(now)
        replayed: list[int] = []
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _INSERT_LOCK)
                for dead_letter_id in sorted(set(dead_letter_ids)):
                    letter = await conn.fetchrow(
                        f"SELECT {_EVENT_COLUMNS} FROM dead_letters"
                        " WHERE id = $1 AND status = 'dead' FOR UPDATE",
                        dead_letter_id,
                    )
                    if letter is None:
                        continue
                    pid = await conn.fetchval(
                        f"INSERT INTO postings ({_EVENT_COLUMNS})"
                        " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING pid",
                        *letter.values(),
                    )
                    await conn.execute(
                        "INSERT INTO order_queue (order_key, head_pid) VALUES ($1, $2)"
                        " ON CONFLICT (order_key) DO NOTHING",
                        letter["order_key"],
                        pid,
                    )
                    await conn.execute(
                        "UPDATE dead_letters SET status = 'replayed', resolved_at = $2,"
                        " resolved_by = $3, resolution = $4, replay_pid = $5 WHERE id = $1",
                        dead_letter_id,
                        now,
                        actor,
                        reason,
                        pid,
                    )
                    await self._audit(conn, now, actor, "replay", dead_letter_id, letter, reason)
                    await conn.execute(
                        f"UPDATE orders SET {_NO_PARKING}, updated_at = $2 WHERE order_key = $1",
                        letter["order_key"],
                        now,
                    )
                    replayed.append(dead_letter_id)
        return replayed

    async def discard(self, dead_letter_id: int, actor: str, reason: str, now: datetime) -> bool:
        """Resolve a dead letter without posting it; False when it is not dead."""
        aware(now)
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                letter = await conn.fetchrow(
                    "UPDATE dead_letters SET status = 'discarded', resolved_at = $2,"
                    " resolved_by = $3, resolution = $4 WHERE id = $1 AND status = 'dead'"
                    " RETURNING order_key, event_id",
                    dead_letter_id,
                    now,
                    actor,
                    reason,
                )
                if letter is None:
                    return False
                await self._audit(conn, now, actor, "discard", dead_letter_id, letter, reason)
        return True

    async def _audit(
        self,
        conn: Connection,
        at: datetime,
        actor: str,
        action: Literal["replay", "discard"],
        dead_letter_id: int,
        letter: asyncpg.Record,
        reason: str | None,
    ) -> None:
        await conn.execute(
            "INSERT INTO audit_log (at, actor, action, dead_letter_id, order_key, event_id,"
            " reason) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            at,
            actor,
            action,
            dead_letter_id,
            letter["order_key"],
            letter["event_id"],
            reason,
        )

    async def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        """Replays and discards, newest first."""
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT {_AUDIT_COLUMNS} FROM audit_log ORDER BY id DESC LIMIT $1", limit
            )
        return [row_io.audit(row, _as_is) for row in rows]
