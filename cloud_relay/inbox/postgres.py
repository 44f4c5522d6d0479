"""The shared inbox: PostgreSQL through an asyncpg pool, for several relay replicas.

Replicas serialise per gateway on its ``gateways`` row (``SELECT … FOR UPDATE``): whoever holds
the lock compares the batch with ``acked_seq`` and writes only what is new, so overlapping
batches from concurrent replicas end with no gap and no duplicate. Events go in with COPY, the
fastest of COPY, ``executemany`` and ``unnest`` for 1,000-event batches (bench/inbox_store.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg

from cloud_relay.errors import RejectedError, SequenceGapError
from cloud_relay.inbox.conflicts import duplicate_event, taken_id_in_detail
from cloud_relay.inbox.store import (
    GatewayInfo,
    GatewayKey,
    InboxEvent,
    InboxStats,
    StoredEvent,
    StoreResult,
    check_batch,
)
from cloud_relay.storage.postgres import PostgresStore
from cloud_relay.storage.postgres import redact_url as redact_url
from cloud_relay.storage.schema import Schema

# Each entry brings the schema from version N to N + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE gateways (
            gateway_id text PRIMARY KEY,
            acked_seq bigint NOT NULL DEFAULT 0,
            last_seen_at timestamptz
        )""",
        """CREATE TABLE keys (
            key_id text PRIMARY KEY,
            gateway_id text NOT NULL REFERENCES gateways (gateway_id),
            public_key_pem text NOT NULL,
            added_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        )""",
        "CREATE INDEX keys_gateway ON keys (gateway_id)",
        """CREATE TABLE events (
            gateway_id text NOT NULL,
            seq bigint NOT NULL,
            id uuid NOT NULL UNIQUE,
            type text NOT NULL,
            occurred_at timestamptz NOT NULL,
            received_at timestamptz NOT NULL,
            key_id text NOT NULL,
            body bytea NOT NULL,
            PRIMARY KEY (gateway_id, seq)
        )""",
    ),
    # Keys carry a role; the keys registered before are gateway keys.
    ("ALTER TABLE keys ADD COLUMN role text NOT NULL DEFAULT 'gateway'",),
)
_SCHEMA = Schema("inbox", _MIGRATIONS)

# Taken while migrating so replicas starting together do not race on CREATE TABLE.
_MIGRATION_LOCK = 0x696E626F78  # "inbox"

_EVENT_COLUMNS = ("gateway_id", "seq", "id", "type", "occurred_at", "received_at", "key_id", "body")
_KEY_COLUMNS = "key_id, gateway_id, public_key_pem, added_at, revoked_at, role"


def _key(row: asyncpg.Record) -> GatewayKey:
    return GatewayKey(
        key_id=row["key_id"],
        gateway_id=row["gateway_id"],
        public_key_pem=row["public_key_pem"],
        added_at=row["added_at"],
        revoked_at=row["revoked_at"],
        role=row["role"],
    )


class PostgresInbox(PostgresStore):
    """:class:`~cloud_relay.inbox.store.InboxStore` on PostgreSQL, safe across replicas."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout_seconds: float = 10.0,
        command_timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(
            url,
            _SCHEMA,
            label="inbox",
            migration_lock=_MIGRATION_LOCK,
            pool_size=pool_size,
            connect_timeout_seconds=connect_timeout_seconds,
            command_timeout_seconds=command_timeout_seconds,
        )
        self._batches = 0
        self._events_stored = 0
        self._events_replayed = 0
        self._gaps = 0

    async def ping(self) -> None:
        """Raise TransientError unless a pooled connection answers."""
        with self._errors():
            async with self._conn().acquire() as conn:
                await conn.fetchval("SELECT 1", timeout=self._connect_timeout)

    async def store_batch(
        self, gateway_id: str, key_id: str, first_seq: int, events: Sequence[InboxEvent]
    ) -> StoreResult:
        """Store the events past the ack point in one transaction holding the gateway's row lock."""
        check_batch(first_seq, events)
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                acked, now = await self._lock_gateway(conn, gateway_id)
                if first_seq > acked + 1:
                    self._gaps += 1
                    raise SequenceGapError(gateway_id, acked + 1)
                fresh = events[max(0, acked + 1 - first_seq) :]
                if fresh:
                    records = [
                        (gateway_id, e.seq, e.id, e.type, e.occurred_at, now, key_id, e.body)
                        for e in fresh
                    ]
                    await self._insert_events(conn, gateway_id, first_seq, records)
                    acked = fresh[-1].seq
                await conn.execute(
                    "UPDATE gateways SET acked_seq = $2, last_seen_at = $3 WHERE gateway_id = $1",
                    gateway_id,
                    acked,
                    now,
                )
        self._batches += 1
        self._events_stored += len(fresh)
        self._events_replayed += len(events) - len(fresh)
        return StoreResult(acked_seq=acked, stored=len(fresh))

    async def _lock_gateway(
        self, conn: asyncpg.pool.PoolConnectionProxy, gateway_id: str
    ) -> tuple[int, datetime]:
        query = "SELECT acked_seq, now() FROM gateways WHERE gateway_id = $1 FOR UPDATE"
        row = await conn.fetchrow(query, gateway_id)
        if row is None:
            await conn.execute(
                "INSERT INTO gateways (gateway_id) VALUES ($1) ON CONFLICT DO NOTHING", gateway_id
            )
            row = await conn.fetchrow(query, gateway_id)
            assert row is not None
        return int(row[0]), row[1]

    async def _insert_events(
        self,
        conn: asyncpg.pool.PoolConnectionProxy,
        gateway_id: str,
        first_seq: int,
        records: Sequence[tuple[object, ...]],
    ) -> None:
        try:
            await conn.copy_records_to_table("events", records=records, columns=_EVENT_COLUMNS)
        except asyncpg.UniqueViolationError as exc:
            # (gateway_id, seq) is past the ack point, so only an event id can collide; the
            # transaction is void now, so the id comes from the error's "Key (id)=(...)".
            raise duplicate_event(gateway_id, first_seq, _taken_id(exc, records)) from exc
        except (asyncpg.DataError, asyncpg.InvalidTextRepresentationError) as exc:
            raise RejectedError(
                f"gateway {gateway_id}: batch from seq {first_seq} cannot be stored ({exc})"
            ) from exc

    async def acked_seq(self, gateway_id: str) -> int:
        """Highest contiguous seq stored for the gateway (0 when none)."""
        with self._errors():
            value = await self._conn().fetchval(
                "SELECT acked_seq FROM gateways WHERE gateway_id = $1", gateway_id
            )
        return int(value) if value is not None else 0

    async def events_after(self, gateway_id: str, after_seq: int, limit: int) -> list[StoredEvent]:
        """Stored events with seq > after_seq, in seq order, at most ``limit``."""
        with self._errors():
            rows = await self._conn().fetch(
                f"SELECT {', '.join(_EVENT_COLUMNS)} FROM events"
                " WHERE gateway_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                gateway_id,
                after_seq,
                limit,
            )
        return [
            StoredEvent(
                gateway_id=r["gateway_id"],
                seq=r["seq"],
                id=str(r["id"]),
                type=r["type"],
                occurred_at=r["occurred_at"],
                received_at=r["received_at"],
                key_id=r["key_id"],
                body=bytes(r["body"]),
            )
            for r in rows
        ]

    async def add_key(
        self, gateway_id: str, key_id: str, public_key_pem: str, role: str = "gateway"
    ) -> None:
        """Register a key (idempotent); RejectedError if it is revoked or another gateway's."""
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO gateways (gateway_id) VALUES ($1) ON CONFLICT DO NOTHING",
                    gateway_id,
                )
                inserted = await conn.fetchval(
                    "INSERT INTO keys (key_id, gateway_id, public_key_pem, role)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (key_id) DO NOTHING RETURNING true",
                    key_id,
                    gateway_id,
                    public_key_pem,
                    role,
                )
                if inserted:
                    return
                row = await conn.fetchrow(
                    "SELECT gateway_id, revoked_at FROM keys WHERE key_id = $1", key_id
                )
                assert row is not None
                if row["gateway_id"] != gateway_id:
                    raise RejectedError(
                        f"key {key_id} is already registered to gateway {row['gateway_id']}"
                    )
                if row["revoked_at"] is not None:
                    raise RejectedError(
                        f"key {key_id} of gateway {gateway_id} was revoked; make a new key"
                    )

    async def revoke_key(self, key_id: str) -> int:
        """Revoke one key; returns how many were revoked (0 or 1)."""
        return await self._revoke("key_id", key_id)

    async def revoke_gateway(self, gateway_id: str) -> int:
        """Revoke every unrevoked key of a gateway; returns how many were revoked."""
        return await self._revoke("gateway_id", gateway_id)

    async def _revoke(self, column: Literal["key_id", "gateway_id"], value: str) -> int:
        with self._errors():
            status = await self._conn().execute(
                f"UPDATE keys SET revoked_at = now() WHERE {column} = $1 AND revoked_at IS NULL",
                value,
            )
        return int(status.rsplit(" ", 1)[1])

    async def get_key(self, key_id: str) -> GatewayKey | None:
        """The key with this id, revoked or not."""
        with self._errors():
            row = await self._conn().fetchrow(
                f"SELECT {_KEY_COLUMNS} FROM keys WHERE key_id = $1", key_id
            )
        return _key(row) if row is not None else None

    async def list_gateways(self) -> list[GatewayInfo]:
        """Every gateway with its keys and ack point, by gateway id."""
        return await self._gateways(None)

    async def get_gateway(self, gateway_id: str) -> GatewayInfo | None:
        """One gateway with its keys, or None."""
        found = await self._gateways(gateway_id)
        return found[0] if found else None

    async def _gateways(self, gateway_id: str | None) -> list[GatewayInfo]:
        where = "WHERE gateway_id = $1" if gateway_id is not None else ""
        params = (gateway_id,) if gateway_id is not None else ()
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction(readonly=True):
                gateways = await conn.fetch(
                    f"SELECT gateway_id, acked_seq, last_seen_at FROM gateways {where}"
                    " ORDER BY gateway_id",
                    *params,
                )
                keys = await conn.fetch(
                    f"SELECT {_KEY_COLUMNS} FROM keys {where} ORDER BY added_at, key_id", *params
                )
        by_gateway: dict[str, list[GatewayKey]] = {}
        for row in keys:
            by_gateway.setdefault(row["gateway_id"], []).append(_key(row))
        return [
            GatewayInfo(
                gateway_id=g["gateway_id"],
                acked_seq=g["acked_seq"],
                last_seen_at=g["last_seen_at"],
                keys=tuple(by_gateway.get(g["gateway_id"], ())),
            )
            for g in gateways
        ]

    def stats(self) -> InboxStats:
        """Counters since this instance was created."""
        return InboxStats(
            batches=self._batches,
            events_stored=self._events_stored,
            events_replayed=self._events_replayed,
            gaps=self._gaps,
            transient_errors=self._transient_errors,
        )


def _taken_id(
    exc: asyncpg.UniqueViolationError, records: Sequence[tuple[object, ...]]
) -> tuple[str, int] | None:
    taken = taken_id_in_detail(exc.detail)
    for record in records:
        if taken is not None and str(record[2]) == taken:
            return taken, int(str(record[1]))
    return None
