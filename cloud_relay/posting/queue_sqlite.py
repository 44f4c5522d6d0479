"""The posting queue and each order's state (ledger, intent, parking), in SQLite.

The ``PostingQueue`` role of :class:`~cloud_relay.posting.sqlite.SqlitePostingStore`.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import aiosqlite

from cloud_relay.posting import rows as row_io
from cloud_relay.posting.sqlite_base import (
    _EVENT_COLUMNS,
    _NO_PARKING,
    _POSTING_COLUMNS,
    SqlitePostingBase,
    _advance_head,
    _ts,
)
from cloud_relay.posting.store import (
    NewPosting,
    OrderState,
    Posting,
    PostingCounts,
    check_postings,
    decode_json,
    encode_json,
)
from cloud_relay.storage.sqlite import fetch_rows
from cloud_relay.storage.timestamps import parse_utc


class SqlitePostingQueue(SqlitePostingBase):
    """The posting queue and order state."""

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

    async def parked_orders(self) -> list[OrderState]:
        """Parked orders, the longest parked first."""
        return await self._orders("WHERE o.parked ORDER BY o.parked_since, o.order_key", ())

    async def orders(self, limit: int = 1000) -> list[OrderState]:
        """Every order with a stored state, most recently updated first."""
        return await self._orders("ORDER BY o.updated_at DESC, o.order_key LIMIT ?", (limit,))

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
