"""kill -9 of the relay while its writer posts a live stream into Odoo: every event lands once.

The sandbox (Odoo 18) runs as its own process and outlives every relay. Events for 20
manufacturing orders are stored straight into the relay's SQLite inbox, a batch at a time while
the relay runs; the relay is SIGKILLed each time the sandbox has answered a random 3 to 40 more
calls since its restart, so kills land between (and inside) the calls of one step. Small folds
(``max_fold`` 50) make many steps. At the end Odoo must hold exactly what the events say: each
quantity once, each scrap once, each order marked done once.

Sizes: ``WRITER_KILL9_EVENTS`` (default 5,000), ``WRITER_KILL9_KILLS`` (default 10);
``WRITER_KILL9_SEED`` replays a run's events and kill points.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cloud_relay.inbox.store import InboxEvent
from tests.cloud_relay.odoo.sandbox.scenario import Rpc, on_hand
from tests.cloud_relay.posting.harness import Plant
from tests.e2e.odoo_rig import (
    Line,
    SandboxProcess,
    StoreWatch,
    WriterRelay,
    production_line,
)
from tests.e2e.relay_fleet import error_records, tail

GATEWAY_ID = "gw-writer-kill9"
EVENTS = int(os.environ.get("WRITER_KILL9_EVENTS", "5000"))
KILLS = int(os.environ.get("WRITER_KILL9_KILLS", "10"))
ORDERS = 20
#: Orders that end with ``order.completed`` (no backorder); the others stay open.
COMPLETED = 5
SCRAP_SHARE = 0.02
#: Events stored per inbox batch, and the backlog below which the next batch is stored.
BATCH = 50
LOW_WATER = 200
#: Most calls the sandbox answers after a restart before the relay is killed again.
CALLS_BEFORE_KILL = (3, 40)
WRITER = {
    "concurrency": 4,
    "max_fold": 50,
    "patience_seconds": 1e9,
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 1.0,
    "poll_seconds": 0.05,
}
#: Longest wait for one kill point, or for the last events to be posted.
STEP_SECONDS = 60.0
POLL_SECONDS = 0.01


@dataclass
class Tally:
    """What the events of one order say should be in Odoo."""

    produced: float = 0.0
    bolts_consumed: float = 0.0
    scraps: int = 0
    completed: int = 0


def plan_events(
    plant: Plant, names: list[str], count: int, rng: random.Random
) -> tuple[list[InboxEvent], dict[str, Tally]]:
    """``count`` events across the orders: production and BOLT consumption, some BOLT scrap,
    and ``COMPLETED`` orders completed as their last event, spread over the stream."""
    tallies = {name: Tally() for name in names}
    closing = dict(
        zip(
            (count * (n + 1) // (COMPLETED + 1) for n in range(COMPLETED)),
            rng.sample(names, COMPLETED),
            strict=True,
        )
    )
    open_orders = list(names)
    events: list[InboxEvent] = []
    for position in range(count):
        if position < len(names):
            # Every order reports production first: a completion needs some.
            name = names[position]
            tallies[name].produced += 1
            events.append(plant.event("production.reported", order=name, qty=1))
            continue
        if position in closing:
            name = closing[position]
            open_orders.remove(name)
            tallies[name].completed += 1
            events.append(plant.event("order.completed", order=name, backorder=False))
            continue
        name = rng.choice(open_orders)
        tally = tallies[name]
        draw = rng.random()
        if draw < SCRAP_SHARE:
            tally.scraps += 1
            events.append(
                plant.event("scrap.reported", order=name, product="BOLT", qty=1, reason="dropped")
            )
        elif draw < (1 + SCRAP_SHARE) / 2:
            tally.produced += 1
            events.append(plant.event("production.reported", order=name, qty=1))
        else:
            tally.bolts_consumed += 2
            events.append(plant.event("material.consumed", order=name, product="BOLT", qty=2))
    return events, tallies


class Stream:
    """Feeds the planned events into the inbox a batch at a time, as ingest would store them."""

    def __init__(self, watch: StoreWatch, events: list[InboxEvent]) -> None:
        self.watch = watch
        self._events = events
        self.stored = 0

    @property
    def done(self) -> bool:
        """Every planned event is in the inbox."""
        return self.stored == len(self._events)

    async def feed(self, through: int) -> None:
        """Store the next batch when the writer's backlog runs low: up to event ``through``,
        or past it when the writer would otherwise have nothing to do."""
        if self.done:
            return
        backlog = (await self.watch.progress()).backlog
        if backlog >= LOW_WATER or (self.stored >= through and backlog > 0):
            return
        end = min(self.stored + BATCH, through) if self.stored < through else self.stored + BATCH
        batch = self._events[self.stored : end]
        await self.watch.inbox.store_batch(GATEWAY_ID, "test-key", batch[0].seq, batch)
        self.stored += len(batch)


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    what: Callable[[], Awaitable[str]],
    alive: Callable[[], None],
    between: Callable[[], Awaitable[None]],
) -> None:
    """Poll ``condition`` for up to STEP_SECONDS, doing ``between`` each round; ``alive``
    asserts the processes still run, ``what`` describes the wait for a timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_SECONDS
    while not await condition():
        alive()
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {await what()}")
        await between()
        await asyncio.sleep(POLL_SECONDS)


async def crash_through(
    relay: WriterRelay,
    sandbox: SandboxProcess,
    stream: Stream,
    count: int,
    rng: random.Random,
    where: str,
) -> int:
    """Run the relay while the stream flows, SIGKILL it ``KILLS`` times, then let it post the
    rest; returns how many kills cut a step short (an order's intent was left behind).

    Before each kill the stream goes no further than that kill's share of it (unless the writer
    runs dry), so the kills spread over the whole stream, completions included.
    """

    def alive() -> None:
        sandbox.alive()
        assert relay.running, f"the relay exited {where}:\n{tail(relay.logs[-1])}"

    interrupted = 0
    for kill in range(KILLS):
        through = count * (kill + 1) // (KILLS + 1)
        threshold = await sandbox.calls_total() + rng.randint(*CALLS_BEFORE_KILL)
        await relay.start()

        async def reached(threshold: int = threshold) -> bool:
            return await sandbox.calls_total() >= threshold

        async def feed(through: int = through) -> None:
            await stream.feed(through)

        async def kill_point(kill: int = kill, threshold: int = threshold) -> str:
            progress = await stream_progress(stream, relay)
            return f"kill {kill} at {threshold} sandbox calls {where}; {progress}"

        await wait_until(reached, kill_point, alive, feed)
        await relay.kill9()
        orders = await stream.watch.postings.orders()
        in_flight = sum(1 for order in orders if order.intent is not None)
        interrupted += in_flight > 0

    await relay.start()

    async def settled() -> bool:
        return stream.done and (await stream.watch.progress()).settled

    async def backlog() -> str:
        parked = await stream.watch.postings.parked_orders()
        reasons = "; ".join(f"{o.order_key}: {o.park_reason}" for o in parked)
        return f"all posted {where}; {await stream_progress(stream, relay)}; parked: {reasons}"

    async def feed_rest() -> None:
        await stream.feed(count)

    await wait_until(settled, backlog, alive, feed_rest)
    return interrupted


async def stream_progress(stream: Stream, relay: WriterRelay) -> str:
    """Where the stream and the writer are, for a timeout's message."""
    progress = await stream.watch.progress()
    return f"{stream.stored} stored, {progress}, relay log {relay.logs[-1]}"


async def audit_odoo(
    x: Rpc, line: Line, tallies: dict[str, Tally], calls: dict[str, int], where: str
) -> None:
    """Odoo holds each event's effect exactly once."""
    ids = list(line.orders.values())
    orders = await x(
        "mrp.production",
        "read",
        ids,
        fields=["name", "state", "qty_producing", "qty_produced"],
    )
    moves = await x(
        "stock.move",
        "search_read",
        [
            ["raw_material_production_id", "in", ids],
            ["product_id", "=", line.bolt],
            ["scrap_id", "=", False],  # a scrap of a component is a move of the order too
        ],
        fields=["raw_material_production_id", "quantity", "state"],
    )
    consumed: dict[int, float] = defaultdict(float)
    for move in moves:
        if move["state"] != "cancel":
            consumed[move["raw_material_production_id"][0]] += move["quantity"]
    scraps = await x(
        "stock.scrap",
        "search_read",
        [["product_id", "=", line.bolt]],
        fields=["production_id", "state", "scrap_qty"],
    )
    scrapped: dict[int, int] = defaultdict(int)
    for scrap in scraps:
        assert scrap["production_id"], f"a scrap tied to no order: {scrap} {where}"
        assert (scrap["state"], scrap["scrap_qty"]) == ("done", 1), f"{scrap} {where}"
        scrapped[scrap["production_id"][0]] += 1

    found: dict[str, tuple[str, float, float, int]] = {}
    wanted: dict[str, tuple[str, float, float, int]] = {}
    for order in orders:
        name, mo = order["name"], order["id"]
        tally = tallies[name]
        done = order["state"] == "done"
        qty = order["qty_produced"] if done else order["qty_producing"]
        found[name] = (order["state"] if done else "open", qty, consumed[mo], scrapped[mo])
        state = "done" if tally.completed else "open"
        wanted[name] = (state, tally.produced, tally.bolts_consumed, tally.scraps)
    mismatched = {
        name: (found[name], wanted[name]) for name in wanted if found[name] != wanted[name]
    }
    assert not mismatched, (
        f"(state, produced, bolts consumed, scraps) found vs wanted: {mismatched} {where}"
    )

    consumed_done = sum(t.bolts_consumed for t in tallies.values() if t.completed)
    all_scrap = sum(t.scraps for t in tallies.values())
    bolts = (await on_hand(x, line.bolt))["qty_available"]
    assert bolts == line.bolt_stock - consumed_done - all_scrap, where
    marked_done = calls.get("mrp.production.button_mark_done", 0)
    completions = sum(t.completed for t in tallies.values())
    assert marked_done == completions, f"button_mark_done called {marked_done} times {where}"


def writer_warnings(logs: list[Path]) -> list[dict[str, Any]]:
    """The writer's warnings in the relay logs: a parked order, a dead letter or Odoo trouble,
    none of which a crash of the relay alone may cause."""
    found = []
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("level") == "warning" and str(record.get("logger")).startswith(
                    "cloud_relay.posting"
                ):
                    found.append(record)
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_writer_kill9_posts_every_event_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("WRITER_KILL9_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    where = f"(seed {seed}; logs in {tmp_path})"
    sandbox = SandboxProcess(tmp_path)
    creds = await sandbox.start()
    watch = StoreWatch(tmp_path / "relay.db", GATEWAY_ID)
    relay: WriterRelay | None = None
    try:
        x = await sandbox.admin()
        line = await production_line(x, ORDERS)
        events, tallies = plan_events(Plant(GATEWAY_ID), list(line.orders), EVENTS, rng)
        await watch.open()
        relay = WriterRelay(tmp_path, tmp_path / "relay.db", creds, WRITER)
        await sandbox.reset_calls()
        started = time.monotonic()
        stream = Stream(watch, events)
        interrupted = await crash_through(relay, sandbox, stream, len(events), rng, where)
        duration = time.monotonic() - started
        calls = await sandbox.calls()
        assert await relay.stop() == 0, tail(relay.logs[-1])

        assert await watch.postings.list_dead_letters(status=None) == [], where
        counts = await watch.postings.counts()
        assert (counts.applied, counts.dead, counts.parked_orders) == (len(events), 0, 0), counts
        await audit_odoo(x, line, tallies, calls, where)
        for log in relay.logs:
            assert error_records(log) == [], f"{log.name} holds errors {where}"
        assert writer_warnings(relay.logs) == [], where
        if KILLS >= 5:  # with fewer, kills that all fall between steps are a fair draw
            assert interrupted > 0, f"no kill cut a step short: nothing was tested {where}"
        total = sum(calls.values())
        print(
            f"writer kill -9: {len(events)} events, {KILLS} kills ({interrupted} within a step;"
            f" seed {seed}),"
            f" {total} Odoo calls, {total / len(events):.2f} calls/event, {duration:.1f} s"
        )
    finally:
        if relay is not None:
            await relay.stop()
        await watch.close()
        await sandbox.stop()
