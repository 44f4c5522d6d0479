"""The posting worker: routes stored events into per-order queues and posts them, orders in
parallel, each order strictly in order.

One replica posts at a time (the posting store's writer lock); the others stand by. Odoo being
down pauses everything and loses nothing. Odoo refusing an order parks that order alone: it is
retried with growing delays, one event at a time, for ``patience_seconds``; then the refused
event moves to the dead letters with Odoo's message and the order goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from cloud_relay.config import WriterConfig
from cloud_relay.errors import ConfigError, RejectedError, RelayError, TransientError
from cloud_relay.inbox.store import InboxStore
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.errors import OdooError
from cloud_relay.posting.linger import Linger
from cloud_relay.posting.parking import refuse
from cloud_relay.posting.routing import route_events
from cloud_relay.posting.stats import PostingStats
from cloud_relay.posting.step import Applier, Item, merge_intent, take_step
from cloud_relay.posting.store import OrderState, PostingCounts, PostingStore

log = logging.getLogger(__name__)

#: Steps one order may take before it yields its slot to the others.
STEPS_PER_TURN = 8
#: Waits after Odoo is unreachable, growing to the last one.
_TRANSIENT_BACKOFF = (1.0, 2.0, 5.0, 10.0, 30.0)
#: Wait after Odoo refuses the credentials or the server is not a supported Odoo.
_CONFIG_BACKOFF = 60.0
#: Longest wait for the orders in flight to end by themselves when the writer fails.
_DRAIN_SECONDS = 10.0

Connect = Callable[[OdooConfig], Awaitable[OdooClient]]
Clock = Callable[[], datetime]


def _now() -> datetime:
    return datetime.now(UTC)


class PostingWorker:
    """Posts the inbox's events into Odoo until cancelled."""

    def __init__(
        self,
        inbox: InboxStore,
        store: PostingStore,
        odoo: OdooConfig,
        config: WriterConfig,
        *,
        connect: Connect = OdooClient.connect,
        clock: Clock = _now,
    ) -> None:
        self._inbox = inbox
        self._store = store
        self._odoo = odoo
        self._config = config
        self._connect = connect
        self._clock = clock
        self._wake = asyncio.Event()
        self._state = "starting"
        self._last_error: str | None = None
        self._posted = 0
        self._steps = 0
        self._refusals = 0
        self._dead = 0
        self._transient = 0
        self._transient_streak = 0
        self._pause_until = 0.0
        self._client: OdooClient | None = None
        self._odoo_calls = 0
        self._odoo_version: str | None = None
        self._counts = PostingCounts(0, 0, 0, 0)
        self._counted_at = 0.0
        self._linger = Linger(config.linger_seconds)
        self._healthy_until = time.monotonic() + config.stall_seconds

    def wake(self) -> None:
        """New events were stored: look now rather than at the next poll."""
        self._wake.set()

    def healthy(self) -> bool:
        """Whether the writer made progress or reported itself well lately (the watchdog asks)."""
        return time.monotonic() < self._healthy_until

    def _beat(self, busy_seconds: float = 0.0) -> None:
        """The writer works: healthy for ``stall_seconds`` past a wait of ``busy_seconds``."""
        self._healthy_until = time.monotonic() + busy_seconds + self._config.stall_seconds

    def stats(self) -> PostingStats:
        """Counters since start."""
        client = self._client
        return PostingStats(
            self._state,
            self._last_error,
            self._posted,
            self._steps,
            self._refusals,
            self._dead,
            self._transient,
            self._odoo_calls + (client.stats().calls_total if client else 0),
            client.server_version if client else self._odoo_version,
            self._counts.pending,
            self._counts.dead,
            self._counts.parked_orders,
            self.healthy(),
        )

    async def run(self) -> None:
        """Hold the writer lock, connect to Odoo and post, forever (cancel to stop).

        An error of the posting store or the inbox (a database restarting) ends the run: the
        caller runs it under a :class:`~runtime.supervisor.Supervisor`, which starts it
        again.
        """
        try:
            while True:
                if not await self._store.acquire_writer_lock():
                    self._state = "standby"
                    self._beat(self._config.poll_seconds * 5)
                    await self._sleep(self._config.poll_seconds * 5)
                    continue
                client = await self._connected()
                if client is None:
                    continue
                self._client = client
                try:
                    await self._serve(client)
                finally:
                    self._odoo_calls += client.stats().calls_total
                    self._odoo_version = client.server_version
                    self._client = None
                    await client.close()
        except Exception as exc:
            self._state = "restarting"
            self._last_error = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            with contextlib.suppress(Exception):
                await self._store.release_writer_lock()

    async def _connected(self) -> OdooClient | None:
        self._state = "connecting"
        try:
            return await self._connect(self._odoo)
        except ConfigError as exc:
            self._alarm("odoo refuses", exc)
            self._beat(_CONFIG_BACKOFF)
            await self._sleep(_CONFIG_BACKOFF)
        except TransientError as exc:
            self._alarm("odoo unavailable", exc)
            delay = self._transient_delay()
            self._beat(delay)
            await self._sleep(delay)
        return None

    async def _serve(self, client: OdooClient) -> None:
        applier = Applier(
            client, consume_bom_when_unreported=self._config.consume_bom_when_unreported
        )
        running: dict[str, asyncio.Task[None]] = {}
        try:
            while await self._store.writer_lock_held():
                if self._state in ("connecting", "starting"):
                    self._state = "posting"
                self._wake.clear()
                try:
                    await self.route()
                    self._beat()
                except TransientError as exc:
                    self._alarm("inbox unavailable", exc)
                    delay = self._transient_delay()
                    self._beat(delay)
                    await self._sleep(delay)
                    continue
                if time.monotonic() - self._counted_at >= 1.0:
                    self._counts = await self._store.counts()
                    self._counted_at = time.monotonic()
                free = self._config.concurrency - len(running)
                if free > 0 and time.monotonic() >= self._pause_until:
                    held = {*running, *self._linger.waiting()}
                    for key in await self._store.ready_orders(self._clock(), free, held):
                        running[key] = asyncio.create_task(self._post_order(applier, key))
                await self._wait(running)
                for key, task in list(running.items()):
                    if task.done():
                        del running[key]
                        task.result()
        except Exception:
            # The store failed: let the orders in flight end their step on their own (they
            # fail at the store too) rather than cut them off inside a database call.
            if running:
                await asyncio.wait(running.values(), timeout=_DRAIN_SECONDS)
            raise
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

    async def _wait(self, running: dict[str, asyncio.Task[None]]) -> None:
        timeout = self._config.poll_seconds
        wakeup = await self._store.next_wakeup()
        if wakeup is not None:
            timeout = min(timeout, max(0.0, (wakeup - self._clock()).total_seconds()))
        lingering = self._linger.waiting()
        if lingering:
            timeout = min(timeout, min(lingering.values()))
        pause = self._pause_until - time.monotonic()
        if pause > 0:
            timeout = max(timeout, pause)
        self._beat(timeout)
        waiter = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                [waiter, *running.values()], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            waiter.cancel()

    async def route(self) -> int:
        """Put events stored since the last pass into their order's queue; how many."""
        return await route_events(self._inbox, self._store, on_batch=self._beat)

    async def _post_order(self, applier: Applier, key: str) -> None:
        for _ in range(STEPS_PER_TURN):
            state = await self._store.order_state(key)
            postings = await self._store.pending(key, 1 if state.parked else self._config.max_fold)
            if not postings:
                return
            step = take_step(key, [Item.of(p) for p in postings], single=state.parked)
            started = time.monotonic()
            intent = state.intent

            async def save_intent(new: dict[str, Any]) -> None:
                nonlocal intent
                intent = merge_intent(intent, new)
                await self._store.save_intent(key, intent, self._clock())

            try:
                outcome = await applier.apply(key, step, state.ledger, state.intent, save_intent)
            except RejectedError as exc:
                await self._refused(key, state, step, exc)
                return
            except ConfigError as exc:
                self._alarm("odoo refuses", exc)
                self._pause_until = time.monotonic() + _CONFIG_BACKOFF
                return
            except TransientError as exc:
                self._transient += 1
                # The posting store may be the one away (a database restarting), not Odoo.
                self._alarm(
                    "odoo unavailable" if isinstance(exc, OdooError) else "store unavailable", exc
                )
                self._pause_until = time.monotonic() + self._transient_delay()
                return
            except RelayError as exc:
                if not isinstance(exc, OdooError):
                    raise  # the posting store failed, not this order: the supervisor restarts it
                log.exception("posting %s failed unexpectedly", key)
                await self._refused(key, state, step, exc)
                return
            except Exception as exc:  # a bug must not stop the other orders
                log.exception("posting %s failed unexpectedly", key)
                await self._refused(key, state, step, exc)
                return
            pids = [item.posting.pid for item in step]
            await self._store.mark_applied(
                key, pids, outcome.ledger, outcome.effects, self._clock()
            )
            self._posted += len(step)
            self._steps += 1
            self._transient_streak = 0
            if self._state != "posting":
                self._state = "posting"
                self._last_error = None
            if state.parked:
                log.info("order %s posts again after %d refused attempts", key, state.attempts)
            if self._linger.seconds > 0 and len(step) == len(postings) < self._config.max_fold:
                self._linger.hold(key, started)  # all that was pending went: let events gather
                return

    async def _refused(
        self, key: str, state: OrderState, step: list[Item], exc: BaseException
    ) -> None:
        self._refusals += 1
        if await refuse(self._store, self._config, key, state, step, exc, self._clock()):
            self._dead += 1

    def _alarm(self, state: str, exc: BaseException) -> None:
        if self._last_error != str(exc):
            log.warning("Odoo writer: %s: %s", state, exc)
        self._state = state
        self._last_error = str(exc)

    def _transient_delay(self) -> float:
        step = _TRANSIENT_BACKOFF[min(self._transient_streak, len(_TRANSIENT_BACKOFF) - 1)]
        self._transient_streak += 1
        return step * random.uniform(0.5, 1.0)

    async def _sleep(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
