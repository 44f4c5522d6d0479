"""The whole chain under faults: every acknowledged message and every part made is in Odoo once.

mosquitto, the agent, the relay replicas and the Odoo sandbox run as separate processes; the OPC
UA line (a good-parts counter and the current order) runs in the test process and an MQTT feed
publishes ``material.consumed`` messages from a thread. The agent uploads through a WAN proxy
the test can cut, in front of a failover proxy over the replicas. For a bounded time a seeded
random schedule kills the agent and a relay replica with SIGKILL, cuts the WAN, fills the
agent's queue to its limit (the WAN cut while the feed bursts, so the sources pause and MQTT
stops acknowledging), and makes Odoo answer 503, fail with serialization errors, refuse
connections or refuse a write with a UserError (the writer parks the order and posts it later:
patience is large, so nothing may become a dead letter). Actions on different parts overlap.

At the end, with everything restored, the feed's acknowledged messages and the line's parts
must be in Odoo exactly once, in order per order: the applied postings of each order in
increasing (gateway, seq) and its messages in publish order. One line sums it up: lost,
duplicated, out of order, dead-lettered, kills, cuts, faults.

Two variants: two relay replicas on one PostgreSQL database, and one relay on SQLite.
Sizes: ``CHAIN_CHAOS_SECONDS`` (default 40), ``CHAIN_CHAOS_ACTIONS`` (default 12);
``CHAIN_CHAOS_SEED`` replays a run's schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from agent.demo.proxy import CuttableProxy
from tests.cloud_relay.odoo.sandbox.scenario import Rpc
from tests.cloud_relay.support import free_port
from tests.e2e.chain_rig import (
    ChainAgent,
    ChainRelay,
    ChainStore,
    Consumption,
    CounterLine,
    MqttFeed,
    wait_until,
)
from tests.e2e.odoo_rig import Line, SandboxProcess, production_line
from tests.e2e.relay_fleet import FailoverProxy, error_records
from tests.fixtures.mosquitto import Mosquitto, mosquitto
from tests.fixtures.opcua_server import OpcuaTestServer
from tests.fixtures.postgres import postgres_url
from wire.keys import write_keypair

__all__ = ["mosquitto", "postgres_url"]

GATEWAY_ID = "gw-chain"
SECONDS = float(os.environ.get("CHAIN_CHAOS_SECONDS", "40"))
ACTIONS = int(os.environ.get("CHAIN_CHAOS_ACTIONS", "12"))
ORDERS = 6
#: Steady rate of the MQTT feed; bursts come on top when the queue is to be filled.
FEED_PER_SECOND = 30.0
#: The smallest queue the agent accepts: a few seconds of WAN cut fill it.
QUEUE_MAX_BYTES = 64 * 1024
#: Messages asked of the feed at a time while the queue is being filled, and the longest fill.
FILL_BURST = 50
FILL_SECONDS = 20.0
CHANGEOVER_SECONDS = 6.0
WRITER = {
    "concurrency": 4,
    "max_fold": 100,
    "patience_seconds": 1e9,
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 1.0,
    "poll_seconds": 0.05,
}
#: The message of the injected business refusal, to find it in the relays' logs.
REFUSAL = "chain chaos: refused for a while"
#: Longest wait, once everything is restored, for every event to reach Odoo.
SETTLE_SECONDS = 150.0

KINDS = (
    "agent_kill",
    "relay_kill",
    "wan_cut",
    "queue_fill",
    "odoo_503",
    "odoo_serialization",
    "odoo_refusal",
    "odoo_down",
)
#: What each kind of action works on: actions on one part wait for each other, others overlap.
TARGETS = {
    "agent_kill": "agent",
    "relay_kill": "relays",
    "wan_cut": "wan",
    "queue_fill": "wan",
    "odoo_503": "odoo",
    "odoo_serialization": "odoo",
    "odoo_refusal": "odoo",
    "odoo_down": "odoo",
}


@dataclass(frozen=True)
class Action:
    """One fault of the schedule, ``at`` seconds after the chaos began."""

    at: float
    kind: str
    seconds: float = 0.0
    """How long the part stays down, cut or full (or Odoo refuses connections)."""
    times: int = 0
    """Odoo calls an injected fault concerns."""
    victim: str = ""
    """``relay_kill``: the replica holding the writer lock, or one in standby."""

    def __str__(self) -> str:
        return f"{self.at:5.1f} s {self.describe()}"

    def describe(self) -> str:
        detail = {
            "agent_kill": f"down {self.seconds:.1f} s",
            "relay_kill": f"{self.victim}, down {self.seconds:.1f} s",
            "wan_cut": f"{self.seconds:.1f} s",
            "queue_fill": f"held full {self.seconds:.1f} s",
            "odoo_down": f"{self.seconds:.1f} s",
        }.get(self.kind, f"{self.times} calls")
        return f"{self.kind} ({detail})"


def plan_chaos(rng: random.Random, seconds: float, count: int) -> list[Action]:
    """``count`` actions over ``seconds``, each kind at least once when there are enough."""
    if count >= len(KINDS):
        kinds = [*KINDS, *rng.choices(KINDS, k=count - len(KINDS))]
    else:
        kinds = rng.sample(KINDS, count)
    rng.shuffle(kinds)
    offsets = sorted(rng.uniform(0, seconds * 0.9) for _ in kinds)
    plan: list[Action] = []
    for at, kind in zip(offsets, kinds, strict=True):
        if kind == "agent_kill":
            plan.append(Action(at, kind, seconds=rng.uniform(0, 2)))
        elif kind == "relay_kill":
            # The first kill takes the writer lock's holder, so every run sees the lock move.
            first = not any(a.kind == kind for a in plan)
            victim = "writer" if first else rng.choice(("writer", "standby"))
            plan.append(Action(at, kind, seconds=rng.uniform(0, 3), victim=victim))
        elif kind == "wan_cut":
            plan.append(Action(at, kind, seconds=rng.uniform(1, 4)))
        elif kind == "queue_fill":
            plan.append(Action(at, kind, seconds=rng.uniform(0.5, 3)))
        elif kind == "odoo_down":
            plan.append(Action(at, kind, seconds=rng.uniform(1, 3)))
        elif kind == "odoo_serialization":
            # Each costs the sandbox's own retries (Odoo sleeps up to 2**try s between tries).
            plan.append(Action(at, kind, times=1))
        elif kind == "odoo_refusal":
            plan.append(Action(at, kind, times=rng.randint(1, 3)))
        else:
            plan.append(Action(at, kind, times=rng.randint(1, 8)))
    return plan


def fault_rule(action: Action) -> dict[str, object]:
    """The sandbox fault rule of an Odoo action."""
    write = {"model": "mrp.production", "method": "write", "times": action.times}
    if action.kind == "odoo_503":
        return {"kind": "http_status", "status": 503, "times": action.times}
    if action.kind == "odoo_serialization":
        return {"kind": "serialization_failure", "conflicts": 5, **write}
    if action.kind == "odoo_refusal":
        return {
            "kind": "odoo_error",
            "error_name": "odoo.exceptions.UserError",
            "error_message": REFUSAL,
            **write,
        }
    assert action.kind == "odoo_down", action
    return {"kind": "refuse_connections", "seconds": action.seconds}


@dataclass
class Chain:
    """Every part of one run."""

    sandbox: SandboxProcess
    odoo: Rpc
    line: Line
    orders: list[str]
    relays: list[ChainRelay]
    failover: FailoverProxy
    wan: CuttableProxy
    store: ChainStore
    opcua: OpcuaTestServer
    agent: ChainAgent
    counter: CounterLine
    feed: MqttFeed
    production: asyncio.Task[None] | None = None
    """The counter line at work."""

    def alive(self) -> None:
        """Fail the test when a process or producer stopped on its own."""
        self.sandbox.alive()
        self.feed.alive()
        if self.production is not None and self.production.done():
            self.production.result()
            raise AssertionError("the counter line stopped before it was told to")


@dataclass
class Chaos:
    """Carries out the schedule and counts what it did."""

    chain: Chain
    started: float = 0.0
    agent_kills: int = 0
    relay_kills: int = 0
    writer_kills: int = 0
    cuts: int = 0
    fills: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    refusals_armed: int = 0
    journal: list[str] = field(default_factory=list)

    async def run(self, plan: list[Action]) -> None:
        """Each action at its time; actions on one part one after another."""
        loop = asyncio.get_running_loop()
        self.started = loop.time()
        locks = {target: asyncio.Lock() for target in set(TARGETS.values())}

        async def one(action: Action) -> None:
            await asyncio.sleep(max(0.0, self.started + action.at - loop.time()))
            async with locks[TARGETS[action.kind]]:
                self.chain.alive()
                self.note(action.describe())
                await self.act(action)

        async with asyncio.TaskGroup() as tasks:
            for action in plan:
                tasks.create_task(one(action))

    def note(self, what: str) -> None:
        now = asyncio.get_running_loop().time() - self.started
        self.journal.append(f"{now:6.1f} s  {what}")

    async def act(self, action: Action) -> None:
        chain = self.chain
        if action.kind == "agent_kill":
            chain.agent.alive()
            await chain.agent.kill9()
            self.agent_kills += 1
            await asyncio.sleep(action.seconds)
            await chain.agent.start()
        elif action.kind == "relay_kill":
            victim, role = await self.pick_relay(action.victim)
            await victim.kill9()
            self.relay_kills += 1
            self.writer_kills += role != "standby"
            self.note(f"killed relay {victim.name} ({role})")
            await asyncio.sleep(action.seconds)
            await victim.start()
        elif action.kind == "wan_cut":
            await chain.wan.cut()
            self.cuts += 1
            await asyncio.sleep(action.seconds)
            await chain.wan.restore()
        elif action.kind == "queue_fill":
            await chain.wan.cut()
            self.cuts += 1
            if await self.fill_queue():
                self.fills += 1
                self.note("the agent's queue is full")
            else:
                self.note(f"the agent's queue did not fill in {FILL_SECONDS:.0f} s")
            await asyncio.sleep(action.seconds)
            await chain.wan.restore()
        else:
            await chain.sandbox.add_fault(fault_rule(action))
            self.faults[action.kind] += 1
            if action.kind == "odoo_refusal":
                self.refusals_armed += action.times

    async def pick_relay(self, role: str) -> tuple[ChainRelay, str]:
        """The replica holding the writer lock, or one in standby, as ``role`` asks."""
        relays = self.chain.relays
        states = [await relay.writer_state() or "unknown" for relay in relays]
        for relay, state in zip(relays, states, strict=True):
            if (state == "standby") == (role == "standby"):
                return relay, state
        return relays[0], states[0]

    async def fill_queue(self) -> bool:
        """Feed bursts until the agent's queue is full (the WAN is cut); whether it filled."""
        chain = self.chain
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FILL_SECONDS
        while loop.time() < deadline:
            components = await chain.agent.components()
            if components is not None and components["queue"]["full"]:
                return True
            if chain.feed.bursting < FILL_BURST:
                chain.feed.burst(FILL_BURST)
            await asyncio.sleep(0.1)
        return False

    async def restore(self) -> int:
        """Everything up and no fault armed; returns the injected refusals Odoo answered."""
        chain = self.chain
        await chain.wan.restore()
        chain.agent.alive()
        for relay in chain.relays:
            assert relay.running, f"relay {relay.name} is down after the chaos"
        unfired = sum(
            int(rule["remaining"])
            for rule in await chain.sandbox.fault_rules()
            if rule["kind"] == "odoo_error"
        )
        await chain.sandbox.clear_faults()
        return self.refusals_armed - unfired


# -- what reached the far end -----------------------------------------------------------------


@dataclass
class StoreAudit:
    """The applied postings of every order against the producers' truth."""

    lost: int = 0
    """Acknowledged messages not applied under their order."""
    duplicated: int = 0
    """Messages applied more than once."""
    unexpected: int = 0
    """Applied consumption naming no acknowledged message (or another order's)."""
    out_of_order: int = 0
    """Postings applied after a higher (gateway, seq), messages after a later one of theirs."""
    parts: Counter[str] = field(default_factory=Counter)
    """Parts applied per order."""

    def parts_lost(self, made: Counter[str]) -> int:
        return sum(max(0, made[o] - self.parts[o]) for o in made | self.parts)

    def parts_duplicated(self, made: Counter[str]) -> int:
        return sum(max(0, self.parts[o] - made[o]) for o in made | self.parts)


async def audit_store(store: ChainStore, orders: list[str], acked: list[Consumption]) -> StoreAudit:
    """Compare what the writer applied with the acknowledged messages."""
    by_time = {message.at: message for message in acked}
    seen: Counter[datetime] = Counter()
    audit = StoreAudit()
    for order in orders:
        last_key: tuple[str, int] | None = None
        last_n = -1
        for posting, _effect in await store.postings.applied_effects(f"mo:{order}"):
            key = (posting.gateway_id, posting.seq)
            if last_key is not None and key <= last_key:
                audit.out_of_order += 1
            last_key = key
            if posting.type == "production.reported":
                audit.parts[order] += int(json.loads(posting.body)["data"]["qty"])
                continue
            message = by_time.get(posting.occurred_at)
            if posting.type != "material.consumed" or message is None or message.order != order:
                audit.unexpected += 1
                continue
            seen[message.at] += 1
            if seen[message.at] > 1:
                audit.duplicated += 1
                continue
            if message.n < last_n:
                audit.out_of_order += 1
            last_n = message.n
    audit.lost = sum(1 for message in acked if message.at not in seen)
    return audit


async def audit_odoo(
    x: Rpc, line: Line, made: Counter[str], consumed: Counter[str]
) -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    """Per order whose Odoo figures differ: (parts producing, BOLT consumed) found vs truth."""
    ids = list(line.orders.values())
    mos = await x("mrp.production", "read", ids, fields=["name", "state", "qty_producing"])
    moves = await x(
        "stock.move",
        "search_read",
        [
            ["raw_material_production_id", "in", ids],
            ["product_id", "=", line.bolt],
            ["scrap_id", "=", False],
        ],
        fields=["raw_material_production_id", "quantity", "picked", "state"],
    )
    bolts: dict[int, float] = defaultdict(float)
    for move in moves:
        # What the floor reported is picked; an unpicked move only follows the BOM.
        if move["picked"] and move["state"] != "cancel":
            bolts[move["raw_material_production_id"][0]] += move["quantity"]
    mismatched = {}
    for mo in mos:
        name = mo["name"]
        found = (float(mo["qty_producing"]), bolts[mo["id"]])
        wanted = (float(made[name]), float(consumed[name]))
        if found != wanted:
            mismatched[name] = (found, wanted)
    return mismatched


def refusals_logged(logs: list[Path]) -> int:
    """Refused attempts the writers logged for the injected UserError."""
    return sum(
        1
        for log in logs
        for line in log.read_text().splitlines()
        if line.startswith("{") and REFUSAL in json.loads(line).get("msg", "")
    )


# -- the run --------------------------------------------------------------------------------------


async def start_chain(
    stack: contextlib.AsyncExitStack,
    directory: Path,
    broker: Mosquitto,
    store_url: str,
    replicas: int,
    seed: int,
) -> Chain:
    """Every process up, the agent connected to both sources, the producers ready; what was
    started is stopped by ``stack``."""
    sandbox = SandboxProcess(directory)
    stack.push_async_callback(sandbox.stop)
    credentials = await sandbox.start()
    odoo = await sandbox.admin()
    line = await production_line(odoo, ORDERS)
    orders = list(line.orders)

    key = directory / "gateway.pem"
    write_keypair(key)
    ports = [free_port() for _ in range(replicas)]
    failover = FailoverProxy(ports)
    await failover.start()
    stack.push_async_callback(failover.close)
    wan = CuttableProxy("127.0.0.1", failover.port)
    await wan.start()
    stack.push_async_callback(wan.close)
    wan_url = f"http://127.0.0.1:{wan.port}"
    relays = [
        ChainRelay(chr(ord("a") + n), directory, store_url, port, wan_url, credentials, WRITER)
        for n, port in enumerate(ports)
    ]
    for relay in relays:
        stack.push_async_callback(relay.stop)
    await relays[0].add_gateway(GATEWAY_ID, key.with_name(key.name + ".pub"))
    for relay in relays:
        await relay.start()
    store = ChainStore(store_url, GATEWAY_ID)
    await store.open()
    stack.push_async_callback(store.close)

    opcua = OpcuaTestServer()
    await opcua.start()
    stack.push_async_callback(opcua.stop)
    agent = ChainAgent(
        directory,
        GATEWAY_ID,
        key,
        wan_url,
        (broker.host, broker.port),
        opcua.endpoint,
        QUEUE_MAX_BYTES,
    )
    counter = CounterLine(
        opcua, orders, random.Random(f"{seed}-line"), agent.counted, CHANGEOVER_SECONDS
    )
    await counter.set_up()
    stack.push_async_callback(agent.stop)
    await agent.start()

    async def sources_ready() -> bool:
        agent.alive()
        components = await agent.components()
        mqtt_up = components is not None and components["mqtt"]["connected"]
        return mqtt_up and await agent.counted() == 0

    # The feed starts once the broker holds the agent's session, the line once the agent has
    # its baseline: from then on nothing either makes can be missed.
    await wait_until(sources_ready, "the agent connected to the broker and counting parts")
    feed = MqttFeed(
        broker.host, broker.port, orders, random.Random(f"{seed}-feed"), FEED_PER_SECOND
    )
    stack.push_async_callback(feed.close)
    return Chain(
        sandbox, odoo, line, orders, relays, failover, wan, store, opcua, agent, counter, feed
    )


async def settle(chain: Chain, within_seconds: float) -> bool:
    """Wait until the agent has counted every part and sent everything, and the writer has
    applied every acknowledged message and part; False when that does not happen in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_seconds

    async def done() -> bool:
        if await chain.agent.counted() != chain.counter.value:
            return False
        queue = await chain.agent.queue_stats()
        progress = await chain.store.progress()
        if queue.pending or not progress.settled or progress.acked_seq != queue.acked_seq:
            return False
        audit = await audit_store(chain.store, chain.orders, chain.feed.acked)
        return audit.lost == 0 and audit.parts_lost(chain.counter.made) == 0

    while not await done():
        chain.alive()
        chain.agent.alive()
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.25)
    return True


async def chain_under_chaos(
    directory: Path, broker: Mosquitto, store_url: str, replicas: int, label: str
) -> None:
    """Run the chain through a seeded schedule of faults and audit what reached Odoo."""
    seed = int(os.environ.get("CHAIN_CHAOS_SEED", random.randrange(2**32)))
    plan = plan_chaos(random.Random(seed), SECONDS, ACTIONS)
    where = f"({label}; seed {seed}; logs in {directory})"
    print(f"\nchain chaos {where}: {len(plan)} actions over {SECONDS:.0f} s")
    for action in plan:
        print(f"  {action}")
    began = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        chain = await start_chain(stack, directory, broker, store_url, replicas, seed)
        chaos = Chaos(chain)
        stop = asyncio.Event()
        production = chain.production = asyncio.create_task(chain.counter.run(stop))
        chain.feed.start()
        try:
            await chaos.run(plan)
            # The producers go on for the whole time even when the last action came early.
            await asyncio.sleep(
                max(0.0, chaos.started + SECONDS - asyncio.get_running_loop().time())
            )
            refusals_fired = await chaos.restore()
        finally:
            stop.set()
            chain.production = None
            await production
        await chain.feed.stop()
        chaos.note("everything restored, producers stopped")
        settled = await settle(chain, SETTLE_SECONDS)
        chaos.note("settled" if settled else f"not settled after {SETTLE_SECONDS:.0f} s")

        acked = chain.feed.acked
        made = chain.counter.made
        consumed: Counter[str] = Counter()
        for message in acked:
            consumed[message.order] += message.qty
        audit = await audit_store(chain.store, chain.orders, acked)
        odoo_mismatch = await audit_odoo(chain.odoo, chain.line, made, consumed)
        dead = await chain.store.postings.list_dead_letters(status=None)
        progress = await chain.store.progress()
        parked = await chain.store.postings.parked_orders()
        writers = [await relay.writer_state() for relay in chain.relays]
        queue = await chain.agent.queue_stats()

        assert await chain.agent.stop() == 0, f"the agent did not stop cleanly {where}"
        for relay in chain.relays:
            assert await relay.stop() == 0, f"relay {relay.name} did not stop cleanly {where}"
        relay_logs = [log for relay in chain.relays for log in relay.logs]
        refused = refusals_logged(relay_logs)

    lost = audit.lost + audit.parts_lost(made)
    duplicated = audit.duplicated + audit.unexpected + audit.parts_duplicated(made)
    print("\n".join(chaos.journal))
    print(
        f"chain chaos {label}: {len(acked)} MQTT messages acknowledged, {sum(made.values())} parts"
        f" made on {len(made)} orders ({chain.counter.changeovers} changeovers,"
        f" {chain.counter.changeovers_put_off} put off); lost {lost},"
        f" duplicated {duplicated}, out of order {audit.out_of_order}, dead-lettered {len(dead)};"
        f" kills {chaos.agent_kills} agent + {chaos.relay_kills} relay"
        f" ({chaos.writer_kills} holding the writer lock), cuts {chaos.cuts}"
        f" ({chaos.fills} filled the queue), faults {sum(chaos.faults.values())}"
        f" ({', '.join(f'{k} {n}' for k, n in sorted(chaos.faults.items()))}),"
        f" {refused} refused attempts parked of {refusals_fired} refusals injected;"
        f" seed {seed}, {time.monotonic() - began:.0f} s"
    )
    planned_fills = sum(1 for action in plan if action.kind == "queue_fill")
    assert chaos.fills == planned_fills, f"the queue filled {chaos.fills} of {planned_fills} times"
    assert settled, f"not everything reached Odoo in {SETTLE_SECONDS:.0f} s: {progress} {where}"
    assert (lost, duplicated, audit.out_of_order) == (0, 0, 0), f"{audit} {where}"
    assert not odoo_mismatch, (
        f"(parts producing, BOLT consumed) in Odoo vs the producers: {odoo_mismatch} {where}"
    )
    assert dead == [], f"dead letters with patience {WRITER['patience_seconds']} s {where}"
    assert parked == [] and progress.counts.pending == 0, f"{parked} {progress} {where}"
    assert (queue.pending, queue.acked_seq) == (0, progress.acked_seq), f"{queue} {where}"
    # Every refusal Odoo answered parked its order for a while, and the order went on after it
    # (nothing pending, nothing parked, nothing dead above). A kill between Odoo's answer and
    # the log line loses that line, never the refusal's effect.
    assert refused <= refusals_fired, f"{refused} refusals logged, {refusals_fired} injected"
    if len(chain.relays) > 1:
        assert sorted(map(str, writers)) == ["posting", "standby"], f"writers {writers} {where}"
    for log in chain.agent.logs + relay_logs:
        assert error_records(log) == [], f"{log.name} holds errors {where}"


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_chain_chaos_two_postgres_replicas(
    tmp_path: Path, mosquitto: Mosquitto, postgres_url: str
) -> None:
    await chain_under_chaos(tmp_path, mosquitto, postgres_url, 2, "postgres, 2 replicas")


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_chain_chaos_sqlite_one_relay(tmp_path: Path, mosquitto: Mosquitto) -> None:
    store_url = f"sqlite:///{tmp_path / 'relay.db'}"
    await chain_under_chaos(tmp_path, mosquitto, store_url, 1, "sqlite, 1 relay")
