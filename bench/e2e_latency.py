"""End-to-end latency: from an OPC UA value change to the relay's commit, with the link up.

Run by hand: ``python3 bench/e2e_latency.py [--increments 300] [--rate 20]
[--case defaults age200]``.

An asyncua server in this process (``tests/fixtures/opcua_server.py``) holds the line's
good-parts counter. The real agent (``python -m agent run``: an OPC UA counter rule on that node,
queue durability ``power``) uploads to the real relay (``python -m cloud_relay run``: SQLite
inbox, durability ``power``), each a child process on loopback. After a warm-up that proves the
whole path, the counter is incremented ``--increments`` times at ``--rate`` per second; each write
carries its wall-clock time as the OPC UA SourceTimestamp, which the counter rule makes the
event's ``occurred_at``. Every event the relay stored is then read from its admin API
(``GET /v1/gateways/{id}/events``), its ``occurred_at`` matched to the write, and each increment
timed to the first stored event whose count includes it (a notification may carry two
increments; the rule then makes one event of quantity 2).

Two end points, the commit lying between them:

- ``received_at``: the inbox's stamp, taken when ``store_batch`` starts (SQLite: before the
  IMMEDIATE transaction; PostgreSQL: ``now()``, the transaction's start), so just before the
  commit and its fsync;
- ``committed``: when a read-only connection to the inbox file, polled every ``--poll-ms``
  (default 5) in a thread of this process, first saw the event: after the commit, by at most a
  poll interval.

The floor in the same run: a bare asyncua client in this process subscribed to the same node
with the agent's publishing interval, timed from the write to its notification. All times come
from this machine's one clock.

Cases: ``defaults`` (the shipped settings: publishing interval 100 ms, batch_max_age_ms 0, so a
batch leaves as soon as the link is free) and ``age200`` (batch_max_age_ms 200: every batch that
is not full waits that long for company).
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import logging
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from asyncua import ua
from asyncua.client.client import Client

from agent.sources.opcua.config import OpcuaConfig
from agent.uploader.config import RelayConfig
from bench.relay_ingest import RelayProcess, free_port, register
from tests.fixtures.opcua_server import NAMESPACE, VARIABLES, OpcuaTestServer
from wire.keys import write_keypair

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_ID = "bench-e2e"
ADMIN_TOKEN = "bench-e2e-admin-token-0123456789"
ORDER = "WH/MO/00001"
COUNTER = "good"
WAIT_SECONDS = 60.0
#: Seconds between warm-up increments, until the first one is stored.
WARMUP_STEP_SECONDS = 0.25
#: A stored event's occurred_at must lie this close to a write's time to be that write's.
MATCH_SECONDS = 0.002


@dataclass(frozen=True)
class Case:
    """Agent settings of one measurement."""

    name: str
    publishing_interval_ms: int
    batch_max_age_ms: int


CASES = {
    "defaults": Case(
        "defaults",
        OpcuaConfig.model_fields["publishing_interval_ms"].default,
        RelayConfig.model_fields["batch_max_age_ms"].default,
    ),
    "age200": Case("age200", 100, 200),
}


# --- observers ----------------------------------------------------------------------------


class CommitWatcher:
    """Polls the inbox file read-only in a thread: when each new highest seq became visible."""

    def __init__(self, inbox: Path, poll_seconds: float) -> None:
        self._inbox = inbox
        self._poll = poll_seconds
        self._stop = threading.Event()
        self.seen: list[tuple[int, float]] = []
        """(highest stored seq, wall time first seen), seq increasing."""
        self._thread = threading.Thread(target=self._watch, name="commit-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    @property
    def highest(self) -> int:
        return self.seen[-1][0] if self.seen else 0

    def committed_at(self, seq: int) -> float:
        """When ``seq`` was first seen stored."""
        index = bisect.bisect_left([s for s, _ in self.seen], seq)
        return self.seen[index][1]

    def _watch(self) -> None:
        uri = f"file:{self._inbox}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, check_same_thread=False)) as db:
            while not self._stop.is_set():
                row = db.execute(
                    "SELECT max(seq) FROM events WHERE gateway_id = ?", (GATEWAY_ID,)
                ).fetchone()
                now = time.time()
                if row[0] is not None and row[0] > self.highest:
                    self.seen.append((int(row[0]), now))
                self._stop.wait(self._poll)


class NotificationClock:
    """A bare asyncua subscription handler: when each counter value arrived."""

    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        if isinstance(val, int):
            self.arrived.setdefault(val, time.time())


@contextlib.asynccontextmanager
async def bare_client(
    endpoint: str, publishing_interval_ms: int
) -> AsyncIterator[NotificationClock]:
    """A plain asyncua client subscribed to the counter, as the agent subscribes."""
    client = Client(endpoint, timeout=10)
    await client.connect()
    try:
        idx = await client.get_namespace_index(NAMESPACE)
        node = client.get_node(ua.NodeId.from_string(f"ns={idx};{VARIABLES[COUNTER][0]}"))
        clock = NotificationClock()
        sub = await client.create_subscription(publishing_interval_ms, clock)
        await sub.subscribe_data_change(
            [node], queuesize=10, sampling_interval=ua.Double(publishing_interval_ms)
        )
        yield clock
    finally:
        await client.disconnect()


# --- the processes ------------------------------------------------------------------------


def agent_config(directory: Path, relay_url: str, endpoint: str, case: Case) -> Path:
    """The agent's TOML: one counter rule on the good-parts node, a fixed order, no health page."""
    identifier = VARIABLES[COUNTER][0]
    path = directory / "agent.toml"
    path.write_text(
        f'[gateway]\nid = "{GATEWAY_ID}"\nsigning_key_file = "{directory / "gw.pem"}"\n'
        f'state_dir = "{directory / "agent"}"\n'
        f'[relay]\nurl = "{relay_url}"\nbatch_max_age_ms = {case.batch_max_age_ms}\n'
        f'[opcua]\nendpoint = "{endpoint}"\n'
        f"publishing_interval_ms = {case.publishing_interval_ms}\n"
        f'[opcua.order]\nvalue = "{ORDER}"\n'
        f'[[opcua.nodes]]\nname = "good-parts"\nnamespace_uri = "{NAMESPACE}"\n'
        f'identifier = "{identifier}"\nrule = "counter"\nevent = "production.reported"\n'
        '[health]\nlisten = ""\n[log]\nlevel = "WARNING"\nformat = "json"\n'
    )
    return path


class AgentProcess:
    """``python -m agent run`` with its output in a log file."""

    def __init__(self, config: Path, log: Path) -> None:
        self._log = log.open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=self._log,
            stderr=self._log,
        )

    def check_alive(self) -> None:
        if self._proc.poll() is not None:
            raise RuntimeError(f"agent exited {self._proc.returncode}; see {self._log.name}")

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(30)
        self._log.close()


@dataclass(frozen=True)
class StoredEvent:
    seq: int
    qty: int
    occurred_at: float
    received_at: float


def stored_events(relay_url: str, after: int = 0) -> list[StoredEvent]:
    """The events the relay holds for the gateway past ``after``, from its admin API."""
    out: list[StoredEvent] = []
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=relay_url, headers=headers, timeout=30) as client:
        while True:
            response = client.get(
                f"/v1/gateways/{GATEWAY_ID}/events", params={"after_seq": after, "limit": 1000}
            )
            response.raise_for_status()
            page = response.json()
            for event in page["events"]:
                out.append(
                    StoredEvent(
                        event["seq"],
                        int(event["event"]["data"]["qty"]),
                        datetime.fromisoformat(event["occurred_at"]).timestamp(),
                        datetime.fromisoformat(event["received_at"]).timestamp(),
                    )
                )
            if not page["events"]:
                return out
            after = page["next_after_seq"]


# --- one case -----------------------------------------------------------------------------


async def wait_until_stored(
    relay_url: str, written_at: float, watcher: CommitWatcher, agent: AgentProcess
) -> None:
    """Wait until the relay holds the event of the write made at ``written_at``."""
    deadline = time.monotonic() + WAIT_SECONDS
    checked = 0
    while True:
        agent.check_alive()
        if watcher.highest > checked:
            after, checked = checked, watcher.highest
            events = await asyncio.to_thread(stored_events, relay_url, after)
            if any(abs(e.occurred_at - written_at) <= MATCH_SECONDS for e in events):
                return
        if time.monotonic() > deadline:
            raise RuntimeError("timed out waiting for an increment to reach the relay")
        await asyncio.sleep(0.02)


async def increment(server: OpcuaTestServer, value: int, writes: dict[int, float]) -> None:
    """Write ``value`` to the counter, stamped with the wall-clock time of the write."""
    now = time.time()
    writes[value] = now
    await server.write(COUNTER, value, source_timestamp=datetime.fromtimestamp(now, UTC))


def percentiles(values: Sequence[float]) -> dict[str, float]:
    """p50, p95, p99 and max of ``values`` in milliseconds (inclusive quantiles)."""
    ms = sorted(v * 1000 for v in values)
    cuts = statistics.quantiles(ms, n=100, method="inclusive")
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98], "max": ms[-1], "n": len(ms)}


def attribute(
    events: Sequence[StoredEvent], writes: dict[int, float], measured: Sequence[int]
) -> dict[int, StoredEvent]:
    """For each measured counter value, the first stored event whose count includes it."""
    stamps = sorted((t, v) for v, t in writes.items())
    times = [t for t, _ in stamps]
    reached: list[tuple[int, StoredEvent]] = []
    for event in events:
        i = bisect.bisect_left(times, event.occurred_at - MATCH_SECONDS)
        if i >= len(times) or abs(times[i] - event.occurred_at) > MATCH_SECONDS:
            raise RuntimeError(f"event seq {event.seq}: occurred_at matches no write")
        reached.append((stamps[i][1], event))
    out: dict[int, StoredEvent] = {}
    values = [v for v, _ in reached]
    for value in measured:
        j = bisect.bisect_left(values, value)
        if j == len(values):
            raise RuntimeError(f"counter value {value} never reached the relay")
        out[value] = reached[j][1]
    return out


async def measure_case(
    case: Case, increments: int, rate: float, poll_seconds: float, directory: Path
) -> dict[str, Any]:
    """Relay, server, agent and observers up; warm up; time ``increments`` writes."""
    write_keypair(directory / "gw.pem")
    (directory / "relay").mkdir()
    inbox = directory / "relay" / "inbox.db"
    store_url = f"sqlite:///{inbox}"
    await register(store_url, {GATEWAY_ID: directory / "gw.pem"})
    relay = await asyncio.to_thread(
        RelayProcess, directory, "e2e", store_url, admin_token=ADMIN_TOKEN
    )
    server = OpcuaTestServer(port=free_port())
    watcher = CommitWatcher(inbox, poll_seconds)
    agent: AgentProcess | None = None
    try:
        await server.start()
        watcher.start()
        agent = AgentProcess(
            agent_config(directory, relay.url, server.endpoint, case), directory / "agent.log"
        )
        async with bare_client(server.endpoint, case.publishing_interval_ms) as clock:
            writes: dict[int, float] = {}
            value = 0
            deadline = time.monotonic() + WAIT_SECONDS
            while watcher.highest == 0:  # the agent subscribes, the first increment arrives
                agent.check_alive()
                if time.monotonic() > deadline:
                    raise RuntimeError("no event reached the relay during the warm-up")
                value += 1
                await increment(server, value, writes)
                await asyncio.sleep(WARMUP_STEP_SECONDS)
            warmup_last = value
            await wait_until_stored(relay.url, writes[warmup_last], watcher, agent)
            loop = asyncio.get_running_loop()
            start = loop.time()
            for i in range(1, increments + 1):
                await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
                await increment(server, warmup_last + i, writes)
            last = warmup_last + increments
            await wait_until_stored(relay.url, writes[last], watcher, agent)
        events = await asyncio.to_thread(stored_events, relay.url)
    finally:
        if agent is not None:
            agent.stop()
        watcher.stop()
        await server.stop()
        relay.stop()
    measured = list(range(warmup_last + 1, last + 1))
    first_measured = next(e for e in events if e.occurred_at >= writes[measured[0]] - 0.001)
    if sum(e.qty for e in events if e.seq >= first_measured.seq) != increments:
        raise RuntimeError("the stored quantities do not add up to the increments")
    owner = attribute(events, writes, measured)
    received = [owner[v].received_at - writes[v] for v in measured]
    committed = [watcher.committed_at(owner[v].seq) - writes[v] for v in measured]
    floor = [clock.arrived[v] - writes[v] for v in measured if v in clock.arrived]
    batches = len({owner[v].received_at for v in measured})
    return {
        "case": case.name,
        "publishing_interval_ms": case.publishing_interval_ms,
        "batch_max_age_ms": case.batch_max_age_ms,
        "increments": increments,
        "events": sum(1 for e in events if e.seq >= first_measured.seq),
        "batches": batches,
        "received_at": percentiles(received),
        "committed": percentiles(committed),
        "opcua_floor": percentiles(floor),
    }


def run(
    increments: int = 300,
    rate: float = 20.0,
    cases: Sequence[str] = tuple(CASES),
    poll_ms: float = 5.0,
) -> dict[str, Any]:
    """Every case in turn; prints the table and returns the percentiles per case (ms)."""
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    results: dict[str, Any] = {}
    for name in cases:
        with tempfile.TemporaryDirectory(prefix="e2e-latency-") as tmp:
            results[name] = asyncio.run(
                measure_case(CASES[name], increments, rate, poll_ms / 1000, Path(tmp))
            )
        r = results[name]
        print(
            f"  {name}: committed p50 {r['committed']['p50']:.0f} ms, "
            f"p99 {r['committed']['p99']:.0f} ms",
            flush=True,
        )
    print(
        f"\n{increments} increments at {rate:g}/s per case; agent queue and relay inbox at "
        f"durability power; commits seen by polling every {poll_ms:g} ms; {os.cpu_count()} CPUs"
    )
    print(
        f"{'case':<10}{'pub ms':>7}{'age ms':>7}{'events':>7}{'batches':>8}  "
        f"{'end point':<14}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}  (ms)"
    )
    for name, r in results.items():
        for point in ("opcua_floor", "received_at", "committed"):
            p = r[point]
            head = (
                f"{name:<10}{r['publishing_interval_ms']:>7}{r['batch_max_age_ms']:>7}"
                f"{r['events']:>7}{r['batches']:>8}  "
                if point == "opcua_floor"
                else " " * 39
            )
            print(
                f"{head}{point:<14}{p['p50']:>7.0f}{p['p95']:>7.0f}{p['p99']:>7.0f}{p['max']:>7.0f}"
            )
    print("opcua_floor: a bare asyncua client's notification; received_at: the inbox's stamp,")
    print("just before the commit; committed: first seen stored by a reader of the inbox file")
    return {"increments": increments, "rate": rate, "poll_ms": poll_ms, "cases": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--increments", type=int, default=300)
    parser.add_argument("--rate", type=float, default=20.0, help="increments per second")
    parser.add_argument("--case", nargs="+", choices=list(CASES), default=list(CASES))
    parser.add_argument("--poll-ms", type=float, default=5.0, help="commit watcher interval")
    args = parser.parse_args()
    run(args.increments, args.rate, args.case, args.poll_ms)


if __name__ == "__main__":
    main()
