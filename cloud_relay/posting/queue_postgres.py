"""The posting queue and each order's state (ledger, intent, parking), in PostgreSQL.

The ``PostingQueue`` role of :class:`~cloud_relay.posting.postgres.PostgresPostingStore`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from cloud_relay.posting import rows as row_io
from cloud_relay.posting.postgres_base import (
    _EVENT_COLUMNS,
    _INSERT_LOCK,
    _NO_PARKING,
    _POSTING_COLUMNS,
    PostgresPostingBase,
    _advance_head,
    _as_is,
)
from cloud_relay.posting.store import (
    NewPosting,
    OrderState,
    Posting,
    PostingCounts,
    aware,
    check_postings,
    decode_json,
    encode_json,
)


class PostgresPostingQueue(PostgresPostingBase):
    """The posting queue and order state."""

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

    async def parked_orders(self) -> list[OrderState]:
        """Parked orders, the longest parked first."""
        return await self._orders("WHERE o.parked ORDER BY o.parked_since, o.order_key")

    async def orders(self, limit: int = 1000) -> list[OrderState]:
        """Every order with a stored state, most recently updated first."""
        return await self._orders("ORDER BY o.updated_at DESC, o.order_key LIMIT $1", limit)

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
