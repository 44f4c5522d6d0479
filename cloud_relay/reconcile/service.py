"""Upkeep while the relay runs: the scheduled reconcile run and the pruning loop, their
figures on /metrics and their latest state for the admin API.

:func:`start_upkeep` is all ``run_relay`` calls; it does nothing for a PostgreSQL store (the
history and pruning are kept in a SQLite store only, for now) or without ``[odoo]``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from fastapi import APIRouter, Depends, FastAPI
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud_relay.admin.throttle import GuessThrottle
from cloud_relay.config import RelaySettings
from cloud_relay.inbox.store import InboxStore
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.store import PostingStore
from cloud_relay.reconcile.cli import history_store
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.model import KINDS, Report
from cloud_relay.retention.pruner import Pruner
from cloud_relay.retention.sqlite import DatabaseSize, SqlitePruner

log = logging.getLogger(__name__)


@dataclass
class Upkeep:
    """The running scheduler and pruning task, and what they last found."""

    settings: RelaySettings
    inbox: InboxStore
    posting: PostingStore
    history: SqliteReportStore
    pruner_store: SqlitePruner
    pruner: Pruner
    scheduler: AsyncIOScheduler | None = None
    pruning: asyncio.Task[None] | None = None
    latest: Report | None = None
    size: DatabaseSize | None = None

    async def reconcile_now(self) -> Report | None:
        """One run (the scheduled job); None without ``[odoo]``."""
        from cloud_relay.odoo.client import OdooClient
        from cloud_relay.reconcile.runner import Reconciler

        if self.settings.odoo is None:
            return None
        client = await OdooClient.connect(self.settings.odoo)
        try:
            report = await Reconciler(client, self.posting, self.inbox, self.history).run()
        finally:
            await client.close()
        if report.status == "complete":
            self.latest = report
        log.info(
            "reconcile run %d: %s, %d difference(s)",
            report.id,
            report.status,
            len(report.differences),
        )
        return report

    async def refresh_size(self) -> DatabaseSize:
        self.size = await self.pruner_store.size()
        return self.size

    async def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        if self.pruning is not None:
            self.pruning.cancel()
            await asyncio.gather(self.pruning, return_exceptions=True)
        await self.pruner_store.close()
        await self.history.close()

    def snapshot(self) -> dict[str, Any]:
        """For the admin API: the latest complete report, the database size, the oldest
        event kept and the pruning figures."""
        size = self.size
        return {
            "latest": self.latest.to_json() if self.latest else None,
            "database_bytes": size.bytes if size else None,
            "oldest_event_at": size.oldest_event_at.isoformat()
            if size and size.oldest_event_at
            else None,
            "retention": {
                "keep_days": self.settings.retention.keep_days,
                **vars_of(self.pruner.stats()),
            },
            "schedule": self.settings.reconcile.schedule,
        }


def vars_of(stats: Any) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in stats.__slots__}


class _Collector(Collector):
    def __init__(self, upkeep: Upkeep) -> None:
        self._upkeep = upkeep

    def collect(self) -> Iterator[Metric]:
        differences = GaugeMetricFamily(
            "cloud_relay_reconcile_differences",
            "Differences in the latest complete reconcile run, by kind.",
            labels=["kind"],
        )
        counts = self._upkeep.latest.counts() if self._upkeep.latest else dict.fromkeys(KINDS, 0)
        for kind, count in counts.items():
            differences.add_metric([kind], count)
        yield differences
        size = self._upkeep.size
        database = GaugeMetricFamily(
            "cloud_relay_database_bytes", "Size of the relay's database file (WAL included)."
        )
        database.add_metric([], size.bytes if size else 0)
        yield database
        stats = self._upkeep.pruner.stats()
        pruned = CounterMetricFamily(
            "cloud_relay_retention_pruned_postings", "Applied postings pruned since start."
        )
        pruned.add_metric([], stats.postings_pruned)
        yield pruned


async def start_upkeep(
    settings: RelaySettings,
    inbox: InboxStore,
    posting: PostingStore,
    metrics: RelayMetrics,
    app: FastAPI,
    admin_token: str | None,
) -> Upkeep | None:
    """Open the history, schedule reconcile runs, start pruning, expose their figures."""
    if not settings.store.url.startswith("sqlite:///"):
        log.warning("reconcile history and retention need a SQLite store: not running")
        return None
    from cloud_relay.inbox.factory import sqlite_path

    history = history_store(settings.store)
    pruner_store = SqlitePruner(
        sqlite_path(settings.store.url), durability=settings.store.durability
    )
    await history.open()
    await pruner_store.open()
    upkeep = Upkeep(
        settings,
        inbox,
        posting,
        history,
        pruner_store,
        Pruner(pruner_store, history, settings.retention),
    )
    upkeep.latest = await history.latest_complete()
    await upkeep.refresh_size()
    if settings.reconcile.enabled and settings.odoo is not None:
        scheduler = AsyncIOScheduler(timezone="UTC")
        scheduler.add_job(
            upkeep.reconcile_now,
            settings.reconcile.trigger(),
            id="reconcile",
            max_instances=1,
            coalesce=True,
        )
        scheduler.start()
        upkeep.scheduler = scheduler
    if settings.retention.enabled:
        upkeep.pruning = asyncio.create_task(_prune(upkeep), name="retention")
    metrics.registry.register(_Collector(upkeep))
    app.include_router(admin_router(upkeep, admin_token, app.state.admin_throttle))
    return upkeep


async def _prune(upkeep: Upkeep) -> None:
    await upkeep.pruner.run()


def admin_router(upkeep: Upkeep, token: str | None, throttle: GuessThrottle) -> APIRouter:
    """``GET /v1/reconcile``: the latest report, database size, oldest event, pruning."""
    from cloud_relay.admin.api import require_admin

    router = APIRouter(
        prefix="/v1/reconcile",
        tags=["reconcile"],
        dependencies=[Depends(require_admin(token, throttle))],
    )

    @router.get("", summary="Latest reconcile report, database size and retention")
    async def latest() -> dict[str, Any]:
        await upkeep.refresh_size()
        return upkeep.snapshot()

    return router
