"""The pruning loop: what is older than ``keep_days`` and covered by a complete reconcile run
goes, a small batch at a time, yielding between batches so ingest and posting carry on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cloud_relay.errors import RelayError, TransientError
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.retention.config import RetentionConfig
from cloud_relay.retention.sqlite import SqlitePruner

log = logging.getLogger(__name__)
_BUSY_RETRIES = 10


@dataclass(frozen=True, slots=True)
class RetentionStats:
    """For /metrics and the admin page."""

    runs: int
    postings_pruned: int
    events_pruned: int
    last_cutoff: str | None


def _now() -> datetime:
    return datetime.now(UTC)


class Pruner:
    """Removes posted, reconciled rows older than the configured age."""

    def __init__(
        self,
        store: SqlitePruner,
        history: SqliteReportStore,
        config: RetentionConfig,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._store = store
        self._history = history
        self._config = config
        self._clock = clock
        self._runs = 0
        self._postings = 0
        self._events = 0
        self._cutoff: datetime | None = None

    async def cutoff(self) -> datetime | None:
        """Rows applied before this may go: ``keep_days`` ago, and not after the start of the
        latest complete reconcile run (None: no run completed yet, nothing goes)."""
        latest = await self._history.latest_complete()
        if latest is None:
            return None
        return min(self._clock() - timedelta(days=self._config.keep_days), latest.started_at)

    async def run_once(self) -> int:
        """Prune until nothing more is due; the postings removed."""
        cutoff = await self.cutoff()
        self._runs += 1
        if cutoff is None:
            return 0
        self._cutoff = cutoff
        total = 0
        busy = 0
        while True:
            try:
                pruned = await self._store.prune_batch(cutoff, self._config.batch)
            except TransientError:
                busy += 1  # the database was busy past its timeout: yield, then try again
                if busy > _BUSY_RETRIES:
                    raise
                await asyncio.sleep(0.1 * busy)
                continue
            busy = 0
            total += pruned.postings
            self._postings += pruned.postings
            self._events += pruned.events
            if pruned.postings < self._config.batch:
                break
            await asyncio.sleep(0)  # let ingest and the writer take the database
        if total:
            log.info("retention: removed %d posted events applied before %s", total, cutoff)
        return total

    async def run(self) -> None:
        """Prune every ``interval_seconds`` until cancelled."""
        while True:
            try:
                await self.run_once()
            except RelayError as exc:
                log.warning("retention: pruning failed, retried later: %s", exc)
            await asyncio.sleep(self._config.interval_seconds)

    def stats(self) -> RetentionStats:
        """Counts since start."""
        return RetentionStats(
            self._runs,
            self._postings,
            self._events,
            self._cutoff.isoformat() if self._cutoff else None,
        )
