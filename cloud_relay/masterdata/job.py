"""The publishing job: an APScheduler interval job in each replica that publishes approved BOM
submissions whose time has come, under a lease in the shared store so exactly one replica
publishes at a time.

Nothing about the schedule lives in memory: approved submissions and their effective dates are
rows in the store, so a restarted relay (or another replica) finds them on its next round, and
a submission left half-published resumes where it stood.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from cloud_relay.errors import RelayError
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.factory import BomStore
from cloud_relay.masterdata.flow import publish_submission
from cloud_relay.masterdata.service import Clock, utc_now
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig

log = logging.getLogger(__name__)

LEASE = "bom-publisher"


@dataclass(frozen=True, slots=True)
class BomJobStats:
    """For the admin page and /metrics."""

    rounds: int
    published: int
    parked: int
    failed_rounds: int
    lease_held: bool
    pending: int
    approved: int
    parked_now: int
    last_error: str | None


def _getter(submission_id: int) -> Callable[[s.Tx], Awaitable[s.Submission | None]]:
    return lambda tx: s.get_submission(tx, submission_id)


class BomPublishingJob:
    """Publishes due submissions every ``poll_seconds``; ``wake()`` runs a round at once."""

    def __init__(
        self,
        store: BomStore,
        odoo_config: OdooConfig,
        config: BomConfig,
        *,
        clock: Clock = utc_now,
        holder: str | None = None,
    ) -> None:
        self._store = store
        self._odoo_config = odoo_config
        self._config = config
        self._clock = clock
        self._holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._odoo: OdooClient | None = None
        self._lock = asyncio.Lock()
        self._scheduler: AsyncIOScheduler | None = None
        self._rounds = self._published = self._parked = self._failed = 0
        self._lease_held = False
        self._counts = s.BomCounts(0, 0, 0, 0, 0)
        self._last_error: str | None = None

    def stats(self) -> BomJobStats:
        c = self._counts
        return BomJobStats(
            self._rounds,
            self._published,
            self._parked,
            self._failed,
            self._lease_held,
            c.pending,
            c.approved,
            c.parked,
            self._last_error,
        )

    async def _client(self) -> OdooClient:
        if self._odoo is None:
            self._odoo = await OdooClient.connect(self._odoo_config)
        return self._odoo

    async def run_once(self, now: datetime | None = None) -> int:
        """One round: take the lease, publish what is due; how many were published."""
        async with self._lock:
            self._rounds += 1
            try:
                return await self._round(now or self._clock())
            except RelayError as exc:
                self._failed += 1
                self._last_error = str(exc)
                log.warning("BOM publishing round failed: %s", exc, extra={"error": str(exc)})
                return 0
            finally:
                with contextlib.suppress(RelayError):
                    self._counts = await self._store.run(s.counts)

    async def _round(self, now: datetime) -> int:
        seconds = self._config.lease_seconds
        taken = await self._store.run(
            lambda tx: s.take_lease(tx, LEASE, self._holder, now, seconds)
        )
        self._lease_held = taken
        if not taken:
            return 0
        due = await self._store.run(lambda tx: s.due_submissions(tx, now))
        done = 0
        for row in due:
            odoo = await self._client()
            if await publish_submission(self._store, odoo, self._config, row, clock=self._clock):
                done += 1
                self._published += 1
            else:
                latest = await self._store.run(_getter(row.id))
                if latest is not None and latest.state == "parked":
                    self._parked += 1
            await self._store.run(
                lambda tx: s.take_lease(tx, LEASE, self._holder, self._clock(), seconds)
            )
        return done

    async def close(self) -> None:
        """Release the lease and close the job's Odoo client (``run`` does it when cancelled)."""
        if self._lease_held:
            try:
                await self._store.run(lambda tx: s.drop_lease(tx, LEASE, self._holder))
                self._lease_held = False
            except RelayError:
                log.warning("could not release the BOM publishing lease", exc_info=True)
        if self._odoo is not None:
            await self._odoo.close()
            self._odoo = None

    def wake(self) -> None:
        """Run a round now (after an approval in this replica)."""
        if self._scheduler is not None:
            self._scheduler.modify_job(
                "bom-publish", next_run_time=datetime.now(self._clock().tzinfo)
            )

    async def run(self) -> None:
        """Schedule rounds until cancelled, then release the lease and the Odoo client."""
        scheduler = AsyncIOScheduler()
        scheduler.add_job(
            self.run_once,
            IntervalTrigger(seconds=self._config.poll_seconds),
            id="bom-publish",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(self._clock().tzinfo),
        )
        self._scheduler = scheduler
        scheduler.start()
        try:
            await asyncio.Event().wait()
        finally:
            scheduler.shutdown(wait=False)
            self._scheduler = None
            await self.close()
