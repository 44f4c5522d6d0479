"""The posting store in the inbox's PostgreSQL database, through its own asyncpg pool.

One writer per database: the writer lock is a session advisory lock held on a connection of its
own, outside the pool, so it lasts exactly as long as that connection. Postings are inserted
under a transaction advisory lock, so pids are handed out in commit order and a replay from the
CLI never slips a smaller pid behind one the writer already read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import asyncpg

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
from cloud_relay.storage.postgres import PostgresStore
from cloud_relay.storage.schema import Schema

logger = logging.getLogger(__name__)

Connection = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy

# Each entry brings the schema from version N to N + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE posting_cursor (
            gateway_id text PRIMARY KEY,
            routed_seq bigint NOT NULL
        )""",
        """CREATE TABLE postings (
            pid bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id text NOT NULL,
            gateway_id text NOT NULL,
            seq bigint NOT NULL,
            order_key text NOT NULL,
            type text NOT NULL,
            occurred_at timestamptz NOT NULL,
            body bytea NOT NULL,
            state text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'applied', 'dead')),
            applied_at timestamptz,
            effect text
        )""",
        "CREATE INDEX postings_order ON postings (order_key, state, pid)",
        "CREATE INDEX postings_state ON postings (state, pid)",
        """CREATE TABLE orders (
            order_key text PRIMARY KEY,
            ledger text NOT NULL DEFAULT '{}',
            intent text,
            parked boolean NOT NULL DEFAULT false,
            park_reason text,
            parked_since timestamptz,
            attempts integer NOT NULL DEFAULT 0,
            next_attempt_at timestamptz,
            updated_at timestamptz NOT NULL
        )""",
        "CREATE INDEX orders_parked ON orders (parked_since) WHERE parked",
        "CREATE INDEX orders_updated ON orders (updated_at)",
        """CREATE TABLE dead_letters (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            pid bigint NOT NULL REFERENCES postings (pid),
            event_id text NOT NULL,
            gateway_id text NOT NULL,
            seq bigint NOT NULL,
            order_key text NOT NULL,
            type text NOT NULL,
            occurred_at timestamptz NOT NULL,
            body bytea NOT NULL,
            error text NOT NULL,
            failed_since timestamptz NOT NULL,
            attempts integer NOT NULL,
            dead_at timestamptz NOT NULL,
            status text NOT NULL DEFAULT 'dead'
                CHECK (status IN ('dead', 'replayed', 'discarded')),
            resolved_at timestamptz,
            resolved_by text,
            resolution text,
            replay_pid bigint REFERENCES postings (pid)
        )""",
        "CREATE INDEX dead_letters_status ON dead_letters (status, id)",
        "CREATE INDEX dead_letters_order ON dead_letters (order_key, id)",
        """CREATE TABLE audit_log (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL,
            actor text NOT NULL,
            action text NOT NULL CHECK (action IN ('replay', 'discard')),
            dead_letter_id bigint NOT NULL REFERENCES dead_letters (id),
            order_key text NOT NULL,
            event_id text NOT NULL,
            reason text
        )""",
    ),
    # Each order's oldest pending posting, kept as postings come and go, so finding the next
    # orders to post does not group a whole backlog.
    (
        """CREATE TABLE order_queue (
            order_key text PRIMARY KEY,
            head_pid bigint NOT NULL
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

# Advisory lock keys, one per purpose, distinct from the inbox's migration lock.
_MIGRATION_LOCK = 0x706F7374696E67  # "posting"
_INSERT_LOCK = 0x706F7374696E6769  # "postingi"
_WRITER_LOCK = 0x706F7374696E6777  # "postingw"

# What a broken or closed connection raises.
_CONNECTION_LOST: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)

_NO_PARKING = (
    "parked = false, park_reason = NULL, parked_since = NULL, attempts = 0, next_attempt_at = NULL"
)


def _as_is(value: Any) -> datetime | None:
    """PostgreSQL returns timestamptz as aware datetimes already."""
    return value if isinstance(value, datetime) else None


class PostgresPostingStore(PostgresStore):
    """:class:`~cloud_relay.posting.store.PostingStore` on PostgreSQL."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 4,
        connect_timeout_seconds: float = 10.0,
        command_timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(
            url,
            _SCHEMA,
            label="posting store",
            migration_lock=_MIGRATION_LOCK,
            pool_size=pool_size,
            connect_timeout_seconds=connect_timeout_seconds,
            command_timeout_seconds=command_timeout_seconds,
        )
        self._lock_conn: asyncpg.Connection | None = None
        # The lock connection runs one query at a time; this also orders acquire and release.
        self._lock_guard = asyncio.Lock()

    async def close(self) -> None:
        """Release the writer lock and close the pool."""
        await self.release_writer_lock()
        await super().close()

    async def acquire_writer_lock(self) -> bool:
        """Try the writer advisory lock on a connection of its own, without waiting."""
        async with self._lock_guard:
            if await self._lock_alive():
                return True
            with self._errors():
                conn = await asyncpg.connect(
                    self._url,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                )
            try:
                with self._errors():
                    taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _WRITER_LOCK)
            except BaseException:
                conn.terminate()
                raise
            if not taken:
                await self._hang_up(conn)
                return False
            self._lock_conn = conn
            return True

    async def release_writer_lock(self) -> None:
        """Close the lock connection, which ends its session and so the advisory lock."""
        async with self._lock_guard:
            conn, self._lock_conn = self._lock_conn, None
            if conn is not None:
                await self._hang_up(conn)

    async def writer_lock_held(self) -> bool:
        """Whether the lock connection still answers; a broken one is dropped (lock lost)."""
        async with self._lock_guard:
            return await self._lock_alive()

    async def _lock_alive(self) -> bool:
        conn = self._lock_conn
        if conn is None:
            return False
        try:
            await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
        except _CONNECTION_LOST as exc:
            logger.warning("%s: writer lock connection lost: %s", self._where, exc)
            self._lock_conn = None
            conn.terminate()
            return False
        return True

    async def _hang_up(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=self._connect_timeout)
        except _CONNECTION_LOST:
            conn.terminate()

    async def route_cursor(self, gateway_id: str) -> int:
        """Highest seq of the gateway routed into postings (0 when none)."""
        with self._errors():
            value = await self._conn().fetchval(
                "SELECT routed_seq FROM posting_cursor WHERE gateway_id = $1", gateway_id
            )
        return int(value) if value is not None else 0

    async def route_cursors(self) -> dict[str, int]:
        """The route cursor of every gateway routed so far."""
        with self._errors():
            rows = await self._conn().fetch("SELECT gateway_id, routed_seq FROM posting_cursor")
        return {row["gateway_id"]: row["routed_seq"] for row in rows}

    async def add_postings(
        self, gateway_id: str, through_seq: int, postings: Sequence[NewPosting]
    ) -> int:
        """Queue the postings past the cursor and advance it, in one transaction."""
        check_postings(gateway_id, through_seq, postings)
        for posting in postings:
            aware(posting.occurred_at)
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _INSERT_LOCK)
                await conn.execute(
                    "INSERT INTO posting_cursor (gateway_id, routed_seq) VALUES ($1, 0)"
                    " ON CONFLICT DO NOTHING",
                    gateway_id,
                )
                cursor = await conn.fetchval(
                    "SELECT routed_seq FROM posting_cursor WHERE gateway_id = $1 FOR UPDATE",
                    gateway_id,
                )
                fresh = [p for p in postings if p.seq > cursor]
                before = await conn.fetchval("SELECT coalesce(max(pid), 0) FROM postings")
                await conn.executemany(
                    f"INSERT INTO postings ({_EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                    [
                        (p.event_id, gateway_id, p.seq, p.order_key, p.type, p.occurred_at, p.body)
                        for p in fresh
                    ],
                )
                await conn.execute(
                    "INSERT INTO order_queue (order_key, head_pid)"
                    " SELECT order_key, min(pid) FROM postings WHERE pid > $1 GROUP BY order_key"
                    " ON CONFLICT (order_key) DO NOTHING",
                    before,
                )
                await conn.execute(
                    "UPDATE posting_cursor SET routed_seq = greatest(routed_seq, $2)"
                    " WHERE gateway_id = $1",
                    gateway_id,
                    through_seq,
                )
        return len(fresh)

    async def ready_orders(
        self, now: datetime, limit: int, exclude: Collection[str] = ()
    ) -> list[str]:
        """Order keys with pending postings, not parked or due, by their oldest pending pid."""
        with self._errors():
            rows = await self._conn().fetch(
                "SELECT q.order_key FROM order_queue q LEFT JOIN orders o USING (order_key)"
                " WHERE (o.parked IS NOT TRUE OR o.next_attempt_at <= $1)"
                " AND q.order_key <> ALL ($2::text[])"
                " ORDER BY q.head_pid LIMIT $3",
                aware(now),
                list(exclude),
                limit,
            )
        return [row["order_key"] for row in rows]

    async def next_wakeup(self) -> datetime | None:
        """The earliest retry time of a parked order with pending postings."""
        with self._errors():
            value: datetime | None = await self._conn().fetchval(
                "SELECT min(o.next_attempt_at) FROM orders o WHERE o.parked AND EXISTS"
                " (SELECT 1 FROM postings p WHERE p.order_key = o.order_key"
                " AND p.state = 'pending')"
            )
        return value

    async def pending(self, order_key: str, limit: int) -> list[Posting]:
        """Pending postings of the order in pid order, at most ``limit``."""
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT {_POSTING_COLUMNS} FROM postings"
                " WHERE order_key = $1 AND state = 'pending' ORDER BY pid LIMIT $2",
                order_key,
                limit,
            )
        return [row_io.posting(row, _as_is) for row in rows]

    async def order_state(self, order_key: str) -> OrderState:
        """The order's state (defaults for an unknown order)."""
        with self._errors():
            return await self._order_state(self._conn(), order_key)

    async def _order_state(self, conn: Connection | asyncpg.Pool, order_key: str) -> OrderState:
        row = await conn.fetchrow(
            f"SELECT k.order_key, {_ORDER_FIELDS}, {row_io.pending_of('k')}"
            " FROM (SELECT $1::text AS order_key) k LEFT JOIN orders o USING (order_key)",
            order_key,
        )
        assert row is not None
        return row_io.order(row, _as_is)

    async def save_intent(
        self, order_key: str, intent: dict[str, Any] | None, now: datetime
    ) -> None:
        """Record (or clear) the intent of the order's next round of Odoo calls."""
        with self._errors():
            await self._conn().execute(
                "INSERT INTO orders (order_key, intent, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (order_key)"
                " DO UPDATE SET intent = excluded.intent, updated_at = excluded.updated_at",
                order_key,
                None if intent is None else encode_json(intent),
                aware(now),
            )

    async def save_ledger(self, order_key: str, ledger: dict[str, Any], now: datetime) -> None:
        """Replace the order's ledger, leaving the rest of its state."""
        with self._errors():
            await self._conn().execute(
                "INSERT INTO orders (order_key, ledger, updated_at) VALUES ($1, $2, $3)"
                " ON CONFLICT (order_key)"
                " DO UPDATE SET ledger = excluded.ledger, updated_at = excluded.updated_at",
                order_key,
                encode_json(ledger),
                aware(now),
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
        wanted = sorted(set(pids))
        effect_json = [encode_json(effects.get(pid) or {}) for pid in wanted]
        ledger_json = encode_json(ledger)
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                applied = await conn.fetch(
                    "UPDATE postings p SET state = 'applied', applied_at = $3, effect = u.effect"
                    " FROM unnest($2::bigint[], $4::text[]) AS u (pid, effect)"
                    " WHERE p.pid = u.pid AND p.order_key = $1 AND p.state = 'pending'"
                    " RETURNING p.pid",
                    order_key,
                    wanted,
                    aware(now),
                    effect_json,
                )
                missing = set(wanted) - {row["pid"] for row in applied}
                if missing:
                    raise ValueError(
                        f"order {order_key}: postings {sorted(missing)} are not pending"
                    )
                await _advance_head(conn, order_key)
                await conn.execute(
                    "INSERT INTO orders (order_key, ledger, updated_at) VALUES ($1, $2, $3)"
                    " ON CONFLICT (order_key) DO UPDATE SET ledger = excluded.ledger,"
                    f" intent = NULL, {_NO_PARKING}, updated_at = excluded.updated_at",
                    order_key,
                    ledger_json,
                    now,
                )

    async def park(
        self, order_key: str, reason: str, next_attempt_at: datetime, now: datetime
    ) -> OrderState:
        """Count a failed attempt and hold the order until ``next_attempt_at``."""
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO orders (order_key, parked, park_reason, parked_since, attempts,"
                    " next_attempt_at, updated_at) VALUES ($1, true, $2, $3, 1, $4, $3)"
                    " ON CONFLICT (order_key) DO UPDATE SET parked = true,"
                    " park_reason = excluded.park_reason,"
                    " parked_since = coalesce(orders.parked_since, excluded.parked_since),"
                    " attempts = orders.attempts + 1,"
                    " next_attempt_at = excluded.next_attempt_at,"
                    " updated_at = excluded.updated_at",
                    order_key,
                    reason,
                    aware(now),
                    aware(next_attempt_at),
                )
                return await self._order_state(conn, order_key)

    async def unpark(self, order_key: str) -> None:
        """End the order's parking (reason, start, attempts and retry time too)."""
        with self._errors():
            await self._conn().execute(
                f"UPDATE orders SET {_NO_PARKING} WHERE order_key = $1", order_key
            )

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

    async def parked_orders(self) -> list[OrderState]:
        """Parked orders, the longest parked first."""
        return await self._orders("WHERE o.parked ORDER BY o.parked_since, o.order_key")

    async def orders(self, limit: int = 1000) -> list[OrderState]:
        """Every order with a stored state, most recently updated first."""
        return await self._orders("ORDER BY o.updated_at DESC, o.order_key LIMIT $1", limit)

    async def _orders(self, tail: str, *params: object) -> list[OrderState]:
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT o.order_key, {_ORDER_FIELDS}, {row_io.pending_of('o')}"
                f" FROM orders o {tail}",
                *params,
            )
        return [row_io.order(row, _as_is) for row in rows]

    async def counts(self) -> PostingCounts:
        """Postings by state, open dead letters and parked orders, from one snapshot."""
        with self._errors():
            row = await self._conn().fetchrow(
                "SELECT (SELECT count(*) FROM postings WHERE state = 'pending') AS pending,"
                " (SELECT count(*) FROM postings WHERE state = 'applied') AS applied,"
                " (SELECT count(*) FROM dead_letters WHERE status = 'dead') AS dead,"
                " (SELECT count(*) FROM orders WHERE parked) AS parked_orders"
            )
        assert row is not None
        return PostingCounts(
            pending=row["pending"],
            applied=row["applied"],
            dead=row["dead"],
            parked_orders=row["parked_orders"],
        )

    async def applied_effects(self, order_key: str) -> list[tuple[Posting, dict[str, Any]]]:
        """Applied postings of the order with their effects, in pid order."""
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT {_POSTING_COLUMNS}, effect FROM postings"
                " WHERE order_key = $1 AND state = 'applied' ORDER BY pid",
                order_key,
            )
        return [(row_io.posting(row, _as_is), decode_json(row["effect"] or "{}")) for row in rows]


async def _advance_head(conn: Connection, order_key: str) -> None:
    """Point the order's queue entry at its oldest pending posting, or drop it when none is."""
    head = await conn.fetchval(
        "SELECT min(pid) FROM postings WHERE order_key = $1 AND state = 'pending'", order_key
    )
    if head is None:
        await conn.execute("DELETE FROM order_queue WHERE order_key = $1", order_key)
    else:
        await conn.execute(
            "UPDATE order_queue SET head_pid = $2 WHERE order_key = $1", order_key, head
        )
