"""The posting store in the inbox's PostgreSQL database, through its own asyncpg pool.

One writer per database: the writer lock is a session advisory lock held on a connection of its
own, outside the pool, so it lasts exactly as long as that connection. Postings are inserted
under a transaction advisory lock, so pids are handed out in commit order and a replay from the
CLI never slips a smaller pid behind one the writer already read.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import asyncpg

from cloud_relay.posting import rows as row_io
from cloud_relay.posting.store import (
    OrderState,
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


class PostgresPostingBase(PostgresStore):
    """What the roles of the posting store share: the connection, schema and order reads."""

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

    async def _order_state(self, conn: Connection | asyncpg.Pool, order_key: str) -> OrderState:
        row = await conn.fetchrow(
            f"SELECT k.order_key, {_ORDER_FIELDS}, {row_io.pending_of('k')}"
            " FROM (SELECT $1::text AS order_key) k LEFT JOIN orders o USING (order_key)",
            order_key,
        )
        assert row is not None
        return row_io.order(row, _as_is)

    async def _orders(self, tail: str, *params: object) -> list[OrderState]:
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT o.order_key, {_ORDER_FIELDS}, {row_io.pending_of('o')}"
                f" FROM orders o {tail}",
                *params,
            )
        return [row_io.order(row, _as_is) for row in rows]


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
