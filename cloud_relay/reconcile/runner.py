"""One reconcile run: read the relay's records and Odoo's, list every difference, keep it.

Nothing is corrected: each difference carries both numbers, the cause when it is known and a
proposed action. The run is recorded ``running`` first and ``complete`` with its differences in
one transaction at the end, so a crash in between never leaves a partial report shown as
complete.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cloud_relay.inbox.store import InboxStore
from cloud_relay.odoo.client import OdooClient
from cloud_relay.posting.ledger import OrderLedger, split_line_key
from cloud_relay.posting.store import OrderState, PostingStore
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.model import Difference, Report
from cloud_relay.reconcile.orders import check_dead_letters, check_orders
from cloud_relay.reconcile.reads import CountingReader
from cloud_relay.reconcile.stock import check_negative, check_on_hand

log = logging.getLogger(__name__)
_MAX_ORDERS = 1_000_000


def _now() -> datetime:
    return datetime.now(UTC)


class Reconciler:
    """Compares what the relay applied with what one Odoo holds."""

    def __init__(
        self,
        client: OdooClient,
        store: PostingStore,
        inbox: InboxStore,
        history: SqliteReportStore,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._client = client
        self._store = store
        self._inbox = inbox
        self._history = history
        self._clock = clock

    async def run(self, *, order: str | None = None, since: datetime | None = None) -> Report:
        """One run over every order and place (or one order, or what changed since)."""
        started = self._clock()
        scope: dict[str, Any] = {"order": order, "since": since.isoformat() if since else None}
        run_id = await self._history.start(started, scope)
        reader = CountingReader(self._client)
        differences: list[Difference] = []
        checked: dict[str, int] = {}
        try:
            states = await self._states(order, since)
            found, checked["orders"] = await check_orders(reader, states)
            differences += found
            if order is None:
                found, checked["places"] = await check_on_hand(reader, states)
                differences += found
                components = {
                    split_line_key(k)[0]
                    for s in states
                    if s.order_key.startswith("mo:")
                    for k in OrderLedger.from_json(s.ledger).written
                }
                found, checked["negative_quants"] = await check_negative(reader, components)
                differences += found
            differences += await self._dead_letters(order, states)
            if order is None:
                found, checked["gateways"] = await self._gateways()
                differences += found
            status, error = "complete", None
        except Exception as exc:
            log.exception("reconcile run %d failed", run_id)
            status, error = "failed", str(exc)
        report = Report(
            id=run_id,
            started_at=started,
            finished_at=self._clock(),
            status=status,  # type: ignore[arg-type]
            scope=scope,
            differences=tuple(differences) if status == "complete" else (),
            odoo_calls=dict(sorted(reader.calls.items())),
            checked=checked,
            error=error,
        )
        await self._history.finish(report)
        return report

    async def _states(self, order: str | None, since: datetime | None) -> list[OrderState]:
        states = await self._store.orders(limit=_MAX_ORDERS)
        if order is not None:
            states = [s for s in states if s.order_key == f"mo:{order}"]
        if since is not None:
            states = [s for s in states if s.updated_at is None or s.updated_at >= since]
        return states

    async def _dead_letters(self, order: str | None, states: list[OrderState]) -> list[Difference]:
        key = f"mo:{order}" if order else None
        dead = await self._store.list_dead_letters(status="dead", order_key=key, limit=100_000)
        keys = {d.order_key for d in dead}
        applied = {k: len(await self._store.applied_effects(k)) for k in keys}
        pending = {s.order_key: s.pending for s in states}
        return check_dead_letters(dead, applied, pending)

    async def _gateways(self) -> tuple[list[Difference], int]:
        gateways = await self._inbox.list_gateways()
        routed = await self._store.route_cursors()
        counts = await self._store.counts()
        differences = []
        for gateway in gateways:
            behind = gateway.acked_seq - routed.get(gateway.gateway_id, 0)
            if behind > 0:
                differences.append(
                    Difference(
                        "gateway_lag",
                        gateway.gateway_id,
                        float(gateway.acked_seq),
                        float(routed.get(gateway.gateway_id, 0)),
                        "events stored but not yet handed to the writer",
                        "check that the writer runs (admin page, writer state)",
                        {"pending_postings": counts.pending},
                    )
                )
        return differences, len(gateways)
