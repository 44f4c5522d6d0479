"""kill -9 of the relay while the agent drains a backlog: every event stored once, in seq order.

The agent (``python -m agent run``) uploads a pre-filled queue to real relay processes while the
test SIGKILLs a relay at random points and restarts it on the same port: one replica on the
SQLite inbox, and two replicas on one PostgreSQL database behind a failover proxy (the replica
carrying the agent's connection is the one killed, so the agent alternates between them).

Sizes: ``RELAY_KILL9_EVENTS`` (SQLite, default 100,000), ``RELAY_KILL9_PG_EVENTS`` (PostgreSQL,
default 100,000); ``RELAY_KILL9_SEED`` replays a run's kill points.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import pytest

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from tests.agent.uploader.harness import fill
from tests.cloud_relay.support import free_port
from tests.e2e.relay_fleet import (
    AgentProcess,
    FailoverProxy,
    RelayProcess,
    error_records,
    tail,
)
from tests.fixtures.postgres import postgres_url  # noqa: F401  (fixture)
from wire.keys import write_keypair

GATEWAY_ID = "gw-kill9"
SQLITE_EVENTS = int(os.environ.get("RELAY_KILL9_EVENTS", "100000"))
POSTGRES_EVENTS = int(os.environ.get("RELAY_KILL9_PG_EVENTS", "100000"))
#: Kills of the single SQLite relay; it is down while it restarts, so the agent waits.
SQLITE_KILLS = 4
#: Kills of the PostgreSQL replicas; the agent goes on with the other replica while the killed
#: one restarts, so each kill uses up backlog.
POSTGRES_KILLS = 3
#: Longest the whole backlog may take to arrive once the last kill is done.
DRAIN_SECONDS = 240.0


@dataclass(frozen=True)
class StoredRow:
    """An event as the inbox holds it, in the order the inbox took it in."""

    seq: int
    id: str
    body: bytes


@dataclass(frozen=True)
class Audit:
    """What the inbox holds, against what the agent queued."""

    lost: int
    """Queued ids the inbox does not hold."""
    duplicated: int
    """Rows beyond one per distinct id."""
    out_of_order: int
    """Rows stored after a higher seq, or under a seq other than the one the id was queued at."""

    def __str__(self) -> str:
        return f"lost {self.lost}, duplicated {self.duplicated}, out of order {self.out_of_order}"


def audit(rows: Sequence[StoredRow], queued_ids: Sequence[str]) -> Audit:
    """Compare the inbox rows (in arrival order) with the ids queued at seq 1..N."""
    stored_ids = [row.id for row in rows]
    out_of_order = 0
    previous = 0
    for row in rows:
        event = json.loads(row.body)
        misplaced = (
            not 1 <= row.seq <= len(queued_ids)
            or queued_ids[row.seq - 1] != row.id
            or (event["seq"], event["id"], event["gateway_id"]) != (row.seq, row.id, GATEWAY_ID)
        )
        if misplaced or row.seq < previous:
            out_of_order += 1
        previous = row.seq
    return Audit(
        lost=len(set(queued_ids) - set(stored_ids)),
        duplicated=len(stored_ids) - len(set(stored_ids)),
        out_of_order=out_of_order,
    )


async def prefill(queue_path: Path, count: int) -> list[str]:
    """Queue ``count`` events for the agent; returns their ids in seq order."""
    queue = await QueueStore.open(queue_path, GATEWAY_ID, QueueConfig(durability="process"))
    try:
        await fill(queue, count, chunk=5000)
        ids = [event.id for event in await queue.read_batch(0, count, 2**62)]
    finally:
        await queue.close()
    assert len(ids) == count
    return ids


async def wait_for(
    condition: Callable[[], Awaitable[bool]],
    what: str,
    within_seconds: float,
    alive: Callable[[], None],
) -> None:
    """Poll ``condition`` until true; ``alive`` asserts the processes under test still run."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_seconds
    while not await condition():
        alive()
        assert loop.time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


class InboxReader(Protocol):
    """Reads the inbox behind the relays directly, whether or not a relay is up."""

    async def stored_through(self) -> int:
        """The gateway's ack point in the inbox."""

    async def rows(self) -> list[StoredRow]:
        """The gateway's events in the order the inbox took them in."""


class SqliteInboxReader:
    """The SQLite inbox file, opened read-only beside the relay once the relay has made it."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            uri = f"file:{self._path}?mode=ro"
            self._connection = sqlite3.connect(uri, uri=True, isolation_level=None)
        return self._connection

    async def stored_through(self) -> int:
        row = self._db.execute(
            "SELECT acked_seq FROM gateways WHERE gateway_id = ?", (GATEWAY_ID,)
        ).fetchone()
        return int(row[0]) if row else 0

    async def rows(self) -> list[StoredRow]:
        cursor = self._db.execute(
            "SELECT seq, id, body FROM events WHERE gateway_id = ? ORDER BY rowid", (GATEWAY_ID,)
        )
        return [StoredRow(seq, event_id, bytes(body)) for seq, event_id, body in cursor]

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()


class PostgresInboxReader:
    """The PostgreSQL inbox, through its own connection."""

    def __init__(self, db: asyncpg.Connection) -> None:
        self._db = db

    async def stored_through(self) -> int:
        value = await self._db.fetchval(
            "SELECT acked_seq FROM gateways WHERE gateway_id = $1", GATEWAY_ID
        )
        return int(value or 0)

    async def rows(self) -> list[StoredRow]:
        # received_at is the storing transaction's start; batches of one gateway are stored one
        # after another under its row lock, so it orders them as they were taken in.
        records = await self._db.fetch(
            "SELECT seq, id::text, body FROM events WHERE gateway_id = $1"
            " ORDER BY received_at, seq",
            GATEWAY_ID,
        )
        return [StoredRow(r["seq"], r["id"], bytes(r["body"])) for r in records]


@dataclass
class Fleet:
    """The processes of one run: the agent, relay replicas and the proxy between them."""

    agent: AgentProcess
    replicas: list[RelayProcess]
    proxy: FailoverProxy
    inbox: InboxReader

    async def stop(self) -> None:
        await self.agent.stop()
        for replica in self.replicas:
            await replica.stop()
        await self.proxy.close()


async def start_fleet(
    directory: Path, store_url: str, replicas: int, inbox: InboxReader
) -> tuple[Fleet, Path]:
    """A gateway key registered with the inbox, the replicas up behind the proxy, the agent
    configured (not started); returns the fleet and the agent's queue file."""
    key = directory / "gateway.pem"
    write_keypair(key)
    ports = [free_port() for _ in range(replicas)]
    proxy = FailoverProxy(ports)
    await proxy.start()
    proxy_url = f"http://127.0.0.1:{proxy.port}"
    fleet = Fleet(
        agent=AgentProcess(
            directory, GATEWAY_ID, key, directory / "queue.db", proxy_url, free_port()
        ),
        replicas=[
            RelayProcess(chr(ord("a") + n), directory, store_url, port, public_url=proxy_url)
            for n, port in enumerate(ports)
        ],
        proxy=proxy,
        inbox=inbox,
    )
    try:
        await fleet.replicas[0].add_gateway(GATEWAY_ID, key.with_name(key.name + ".pub"))
        for replica in fleet.replicas:
            await replica.start()
    except BaseException:
        await fleet.stop()
        raise
    return fleet, directory / "queue.db"


async def kill_and_restart(fleet: Fleet, victim: RelayProcess, where: str) -> None:
    """SIGKILL ``victim``, check the inbox kept what it had acknowledged, start it again."""
    before = await fleet.inbox.stored_through()
    await victim.kill9()
    after = await fleet.inbox.stored_through()
    assert after >= before, f"relay {victim.name}: the inbox went back from {before} {where}"
    await victim.start()


async def replays(fleet: Fleet) -> list[int]:
    """Events each replica has answered 200 again without storing them, since it started."""
    return [await replica.events_replayed() for replica in fleet.replicas]


async def kill_after_commit(fleet: Fleet, where: str, alive: Callable[[], None]) -> int:
    """Kill -9 the replica that has just stored a batch, before its answer gets out; returns the
    events a replica then answered again from what it had stored (the resent batch)."""
    earlier = await replays(fleet)
    index = await asyncio.wait_for(fleet.proxy.swallow_next_answer(), 60)
    earlier[index] = 0  # its counters start again with the restart
    await kill_and_restart(fleet, fleet.replicas[index], where)
    fleet.proxy.revive(index)

    async def answered_again() -> bool:
        now = await replays(fleet)
        return sum(now) > sum(earlier)

    await wait_for(answered_again, f"the resent batch answered {where}", 60, alive)
    return sum(await replays(fleet)) - sum(earlier)


async def crash_and_drain(
    fleet: Fleet, count: int, kills: int, seed: int
) -> tuple[dict[str, Any], int]:
    """Run the agent, kill -9 a relay ``kills`` times, wait for the drain; returns the
    uploader's figures and the events a relay answered again after the kill between commit
    and answer.

    Each kill point is drawn from the first half of each kill's share of the backlog still to
    go, so every kill lands while the agent is uploading, restarts included. Kills hit the
    replica carrying the agent's connection at a random point, except one, which hits the
    replica right after it stored a batch, before its answer got out.
    """
    rng = random.Random(seed)
    agent = fleet.agent
    where = f"(seed {seed}; logs in {agent.log.parent})"

    def alive() -> None:
        assert agent.running, f"agent exited {where}:\n{tail(agent.log)}"

    after_commit = rng.randrange(kills)
    replayed = 0
    await agent.start()
    for kill in range(kills):
        stored = await fleet.inbox.stored_through()
        assert stored < count, f"the backlog was gone before kill {kill}: raise its size {where}"
        threshold = stored + int(rng.random() * (count - stored) / (2 * (kills - kill)))

        async def reached(threshold: int = threshold) -> bool:
            return await fleet.inbox.stored_through() >= threshold

        await wait_for(reached, f"kill {kill}: seq {threshold} stored {where}", 120, alive)
        if kill == after_commit:
            replayed = await kill_after_commit(fleet, where, alive)
        else:
            await asyncio.sleep(rng.uniform(0, 0.05))  # anywhere in a request/commit cycle
            victim = fleet.replicas[fleet.proxy.last_target or 0]
            await kill_and_restart(fleet, victim, where)

    async def drained() -> bool:
        return await fleet.inbox.stored_through() >= count

    await wait_for(drained, f"all {count} events stored {where}", DRAIN_SECONDS, alive)

    async def queue_empty() -> bool:
        pending: int = (await agent.queue_stats())["pending"]
        return pending == 0

    await wait_for(queue_empty, f"the agent's queue is empty {where}", 60, alive)
    stats = await agent.queue_stats()
    assert (stats["pending"], stats["acked_seq"]) == (0, count), stats
    uploader = await agent.uploader_stats()
    for replica in fleet.replicas:
        assert await replica.gateway_acked_seq(GATEWAY_ID) == count, replica.name
    assert await agent.stop() == 0, tail(agent.log)
    for replica in fleet.replicas:
        assert await replica.stop() == 0, tail(replica.logs[-1])
    assert error_records(agent.log) == [], f"agent logged errors {where}"
    for replica in fleet.replicas:
        for log in replica.logs:
            assert error_records(log) == [], f"{log.name} holds errors {where}"
    return uploader, replayed


async def run_and_audit(
    fleet: Fleet, queue: Path, count: int, kills: int, label: str
) -> dict[str, Any]:
    """Queue ``count`` events, drain them through relay kills, and check what the inbox holds;
    returns the uploader's figures."""
    seed = int(os.environ.get("RELAY_KILL9_SEED", random.randrange(2**32)))
    try:
        queued_ids = await prefill(queue, count)
        uploader, replayed = await crash_and_drain(fleet, count, kills, seed)
    finally:
        await fleet.stop()
    rows = await fleet.inbox.rows()
    result = audit(rows, queued_ids)
    print(
        f"{label}: {count} events, {kills} relay kills (seed {seed}): {result};"
        f" {replayed} events resent after a kill between commit and answer, answered from the"
        f" inbox; the agent failed {uploader['retries']} attempts"
    )
    assert result == Audit(0, 0, 0), f"{result} (seed {seed})"
    assert sorted(row.seq for row in rows) == list(range(1, count + 1)), f"seed {seed}"
    return uploader


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_relay_kill9_sqlite_inbox_stores_every_event_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox.db"
    reader = SqliteInboxReader(inbox)
    try:
        fleet, queue = await start_fleet(tmp_path, f"sqlite:///{inbox}", 1, reader)
        uploader = await run_and_audit(fleet, queue, SQLITE_EVENTS, SQLITE_KILLS, "sqlite inbox")
    finally:
        reader.close()
    # The only relay was down during each restart: every kill made the agent fail and retry.
    assert uploader["retries"] >= SQLITE_KILLS, uploader


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_relay_kill9_two_postgres_replicas_store_every_event_once(
    tmp_path: Path,
    postgres_url: str,  # noqa: F811  (fixture)
) -> None:
    db = await asyncpg.connect(postgres_url)
    try:
        fleet, queue = await start_fleet(tmp_path, postgres_url, 2, PostgresInboxReader(db))
        await run_and_audit(
            fleet, queue, POSTGRES_EVENTS, POSTGRES_KILLS, "postgres inbox, 2 replicas"
        )
    finally:
        await db.close()
    used = fleet.proxy.connections
    assert min(used) > 0, f"the agent never reached one of the replicas: {used}"
