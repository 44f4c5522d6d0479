"""The embedded inbox: one SQLite file in WAL mode, one writer, for a single relay replica.

Timestamps are stored as RFC 3339 text in UTC (:mod:`cloud_relay.storage.timestamps`).
"""

from __future__ import annotations

import asyncio
import collections
import functools
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiosqlite

from cloud_relay.errors import RejectedError, SequenceGapError
from cloud_relay.inbox.conflicts import duplicate_event
from cloud_relay.inbox.store import (
    GatewayInfo,
    GatewayKey,
    InboxEvent,
    InboxStats,
    StoredEvent,
    StoreResult,
    check_batch,
)
from cloud_relay.storage.schema import Schema
from cloud_relay.storage.sqlite import SqliteStore, fetch_rows
from cloud_relay.storage.timestamps import format_utc, parse_utc

# Each entry brings the schema from version N to N + 1; append, never edit.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE gateways (
            gateway_id TEXT PRIMARY KEY,
            acked_seq INTEGER NOT NULL DEFAULT 0,
            last_seen_at TEXT
        )""",
        """CREATE TABLE keys (
            key_id TEXT PRIMARY KEY,
            gateway_id TEXT NOT NULL REFERENCES gateways (gateway_id),
            public_key_pem TEXT NOT NULL,
            added_at TEXT NOT NULL,
            revoked_at TEXT
        )""",
        "CREATE INDEX keys_gateway ON keys (gateway_id)",
        """CREATE TABLE events (
            gateway_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            id TEXT NOT NULL UNIQUE,
            type TEXT NOT NULL,
            occurred_at TEXT NOT NULL,
            received_at TEXT NOT NULL,
            key_id TEXT NOT NULL,
            body BLOB NOT NULL,
            PRIMARY KEY (gateway_id, seq)
        )""",
    ),
    # Keys carry a role; the keys registered before are gateway keys.
    ("ALTER TABLE keys ADD COLUMN role TEXT NOT NULL DEFAULT 'gateway'",),
)
_SCHEMA = Schema("inbox", _MIGRATIONS)

_INSERT_EVENT = (
    "INSERT INTO events (gateway_id, seq, id, type, occurred_at, received_at, key_id, body)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
#: Events past which a commit group takes no further waiting batch (it always takes one).
GROUP_MAX_EVENTS = 10_000

_EVENT_COLUMNS = "gateway_id, seq, id, type, occurred_at, received_at, key_id, body"
_KEY_COLUMNS = "key_id, gateway_id, public_key_pem, added_at, revoked_at, role"


class _Pending:
    """A batch waiting for the commit group it will share, and its caller's answer."""

    def __init__(
        self, gateway_id: str, key_id: str, first_seq: int, events: Sequence[InboxEvent]
    ) -> None:
        self.gateway_id = gateway_id
        self.key_id = key_id
        self.first_seq = first_seq
        self.events = events
        self.future: asyncio.Future[StoreResult] = asyncio.get_running_loop().create_future()
        # A caller that stopped waiting (cancelled) leaves its answer unread: that is fine.
        self.future.add_done_callback(_read_exception)

    def fail(self, exc: BaseException) -> None:
        if self.future.done():
            return
        if isinstance(exc, asyncio.CancelledError):
            self.future.cancel()
        else:
            self.future.set_exception(exc)


def _read_exception(future: asyncio.Future[StoreResult]) -> None:
    if not future.cancelled():
        future.exception()


def _key(row: sqlite3.Row) -> GatewayKey:
    return GatewayKey(
        key_id=row[0],
        gateway_id=row[1],
        public_key_pem=row[2],
        added_at=datetime.fromisoformat(row[3]),
        revoked_at=parse_utc(row[4]),
        role=row[5],
    )


class SqliteInbox(SqliteStore):
    """:class:`~cloud_relay.inbox.store.InboxStore` on one SQLite file (WAL, single writer)."""

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
            label="inbox database",
            durability=durability,
            busy_timeout_seconds=busy_timeout_seconds,
            user_version=True,
        )
        self._batches = 0
        self._events_stored = 0
        self._events_replayed = 0
        self._gaps = 0
        self._pending: collections.deque[_Pending] = collections.deque()
        self._committer: asyncio.Future[None] | None = None

    async def ping(self) -> None:
        """Raise TransientError unless the file can be read."""
        await self._fetch("SELECT 1 FROM gateways LIMIT 1")

    async def store_batch(
        self, gateway_id: str, key_id: str, first_seq: int, events: Sequence[InboxEvent]
    ) -> StoreResult:
        """Store the events past the ack point; see InboxStore.

        Batches that arrive while a transaction is committing wait and then share the next
        IMMEDIATE transaction (one fsync for all of them), each in a savepoint of its own: a
        batch refused for a gap or a reused id is rolled back alone and the others commit.
        The answer comes only after the COMMIT that holds the batch.
        """
        check_batch(first_seq, events)
        pending = _Pending(gateway_id, key_id, first_seq, events)
        self._pending.append(pending)
        if self._committer is None or self._committer.done():
            self._committer = asyncio.ensure_future(self._commit_pending())
        result = await asyncio.shield(pending.future)
        self._batches += 1
        self._events_stored += result.stored
        self._events_replayed += len(events) - result.stored
        return result

    async def _commit_pending(self) -> None:
        """Commit waiting batches, as many as fit in one group, until none wait."""
        while self._pending:
            group: list[_Pending] = []
            size = 0
            while self._pending and (not group or size < GROUP_MAX_EVENTS):
                group.append(self._pending.popleft())
                size += len(group[-1].events)
            try:
                outcomes = await self._write(functools.partial(self._store_group, group=group))
            except BaseException as exc:
                for pending in group:
                    pending.fail(exc)
                if not isinstance(exc, Exception):
                    for pending in self._pending:
                        pending.fail(exc)
                    self._pending.clear()
                    raise
                continue
            for pending, outcome in zip(group, outcomes, strict=True):
                if isinstance(outcome, StoreResult):
                    pending.future.set_result(outcome)
                else:
                    pending.fail(outcome)

    async def _store_group(
        self, db: aiosqlite.Connection, *, group: Sequence[_Pending]
    ) -> list[StoreResult | RejectedError]:
        received_at = format_utc(datetime.now(UTC))
        outcomes: list[StoreResult | RejectedError] = []
        for pending in group:
            await db.execute("SAVEPOINT batch")
            try:
                outcome: StoreResult | RejectedError = await self._store_one(
                    db, pending, received_at
                )
            except RejectedError as exc:
                await db.execute("ROLLBACK TO batch")
                outcome = exc
            await db.execute("RELEASE batch")
            outcomes.append(outcome)
        return outcomes

    async def _store_one(
        self, db: aiosqlite.Connection, pending: _Pending, received_at: str
    ) -> StoreResult:
        gateway_id, key_id, first_seq, events = (
            pending.gateway_id,
            pending.key_id,
            pending.first_seq,
            pending.events,
        )
        acked = await self._lock_gateway(db, gateway_id)
        if first_seq > acked + 1:
            self._gaps += 1
            raise SequenceGapError(gateway_id, acked + 1)
        fresh = events[max(0, acked + 1 - first_seq) :]
        if fresh:
            rows = [
                (
                    gateway_id,
                    e.seq,
                    e.id,
                    e.type,
                    format_utc(e.occurred_at),
                    received_at,
                    key_id,
                    e.body,
                )
                for e in fresh
            ]
            await self._insert_events(db, gateway_id, first_seq, rows)
            acked = fresh[-1].seq
        await db.execute(
            "UPDATE gateways SET acked_seq = ?, last_seen_at = ? WHERE gateway_id = ?",
            (acked, received_at, gateway_id),
        )
        return StoreResult(acked_seq=acked, stored=len(fresh))

    async def _lock_gateway(self, db: aiosqlite.Connection, gateway_id: str) -> int:
        rows = await fetch_rows(
            db, "SELECT acked_seq FROM gateways WHERE gateway_id = ?", (gateway_id,)
        )
        if rows:
            return int(rows[0][0])
        await db.execute("INSERT INTO gateways (gateway_id) VALUES (?)", (gateway_id,))
        return 0

    async def _insert_events(
        self,
        db: aiosqlite.Connection,
        gateway_id: str,
        first_seq: int,
        rows: Sequence[tuple[object, ...]],
    ) -> None:
        try:
            await db.executemany(_INSERT_EVENT, rows)
        except sqlite3.IntegrityError as exc:
            # (gateway_id, seq) is past the ack point, so only an event id can collide.
            taken = await _first_stored_id(db, gateway_id, rows)
            raise duplicate_event(gateway_id, first_seq, taken) from exc

    async def acked_seq(self, gateway_id: str) -> int:
        """Highest contiguous seq stored for the gateway (0 when none)."""
        rows = await self._fetch(
            "SELECT acked_seq FROM gateways WHERE gateway_id = ?", (gateway_id,)
        )
        return int(rows[0][0]) if rows else 0

    async def events_after(self, gateway_id: str, after_seq: int, limit: int) -> list[StoredEvent]:
        """Stored events with seq > after_seq, in seq order, at most ``limit``."""
        rows = await self._fetch(
            f"SELECT {_EVENT_COLUMNS} FROM events"
            " WHERE gateway_id = ? AND seq > ? ORDER BY seq LIMIT ?",
            (gateway_id, after_seq, limit),
        )
        return [
            StoredEvent(
                gateway_id=r[0],
                seq=r[1],
                id=r[2],
                type=r[3],
                occurred_at=datetime.fromisoformat(r[4]),
                received_at=datetime.fromisoformat(r[5]),
                key_id=r[6],
                body=bytes(r[7]),
            )
            for r in rows
        ]

    async def add_key(
        self, gateway_id: str, key_id: str, public_key_pem: str, role: str = "gateway"
    ) -> None:
        """Register a key (idempotent); RejectedError if it is revoked or another gateway's."""

        async def work(db: aiosqlite.Connection) -> None:
            await db.execute(
                "INSERT OR IGNORE INTO gateways (gateway_id) VALUES (?)", (gateway_id,)
            )
            rows = await fetch_rows(
                db, "SELECT gateway_id, revoked_at FROM keys WHERE key_id = ?", (key_id,)
            )
            if rows:
                _check_existing_key(key_id, gateway_id, rows[0][0], rows[0][1] is not None)
            else:
                await db.execute(
                    f"INSERT INTO keys ({_KEY_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?)",
                    (key_id, gateway_id, public_key_pem, format_utc(datetime.now(UTC)), role),
                )

        await self._write(work)

    async def revoke_key(self, key_id: str) -> int:
        """Revoke one key; returns how many were revoked (0 or 1)."""
        return await self._revoke("key_id", key_id)

    async def revoke_gateway(self, gateway_id: str) -> int:
        """Revoke every unrevoked key of a gateway; returns how many were revoked."""
        return await self._revoke("gateway_id", gateway_id)

    async def _revoke(self, column: Literal["key_id", "gateway_id"], value: str) -> int:
        async with self._connection() as db:
            cursor = await db.execute(
                f"UPDATE keys SET revoked_at = ? WHERE {column} = ? AND revoked_at IS NULL",
                (format_utc(datetime.now(UTC)), value),
            )
            return cursor.rowcount

    async def get_key(self, key_id: str) -> GatewayKey | None:
        """The key with this id, revoked or not."""
        rows = await self._fetch(f"SELECT {_KEY_COLUMNS} FROM keys WHERE key_id = ?", (key_id,))
        return _key(rows[0]) if rows else None

    async def list_gateways(self) -> list[GatewayInfo]:
        """Every gateway with its keys and ack point, by gateway id."""
        return await self._gateways(None)

    async def get_gateway(self, gateway_id: str) -> GatewayInfo | None:
        """One gateway with its keys, or None."""
        found = await self._gateways(gateway_id)
        return found[0] if found else None

    async def _gateways(self, gateway_id: str | None) -> list[GatewayInfo]:
        where, params = ("WHERE gateway_id = ?", (gateway_id,)) if gateway_id else ("", ())
        async with self._connection() as db:
            gateways = await db.execute_fetchall(
                f"SELECT gateway_id, acked_seq, last_seen_at FROM gateways {where}"
                " ORDER BY gateway_id",
                params,
            )
            keys = await db.execute_fetchall(
                f"SELECT {_KEY_COLUMNS} FROM keys {where} ORDER BY added_at, key_id", params
            )
        by_gateway: dict[str, list[GatewayKey]] = {}
        for row in keys:
            by_gateway.setdefault(row[1], []).append(_key(row))
        return [
            GatewayInfo(
                gateway_id=g[0],
                acked_seq=g[1],
                last_seen_at=parse_utc(g[2]),
                keys=tuple(by_gateway.get(g[0], ())),
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


def _check_existing_key(key_id: str, gateway_id: str, owner: str, revoked: bool) -> None:
    if owner != gateway_id:
        raise RejectedError(f"key {key_id} is already registered to gateway {owner}")
    if revoked:
        raise RejectedError(f"key {key_id} of gateway {gateway_id} was revoked; make a new key")


async def _first_stored_id(
    db: aiosqlite.Connection, gateway_id: str, rows: Sequence[tuple[object, ...]]
) -> tuple[str, int] | None:
    """The first (event id, seq) of ``rows`` whose id is stored under another gateway or seq
    (rows this failed insert already wrote are still visible in the transaction)."""
    ids = [row[2] for row in rows]
    taken: dict[object, tuple[object, object]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        query = f"SELECT id, gateway_id, seq FROM events WHERE id IN ({marks})"
        taken.update((row[0], (row[1], row[2])) for row in await fetch_rows(db, query, chunk))
    for row in rows:
        if row[2] in taken and taken[row[2]] != (gateway_id, row[1]):
            return str(row[2]), int(str(row[1]))
    return None
