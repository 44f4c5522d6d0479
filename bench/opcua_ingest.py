"""OPC UA ingest benchmark: OpcuaSource into a durable QueueStore, beside a bare asyncua client.

Run by hand from the repository root::

    python3 bench/opcua_ingest.py

or through ``python -m bench`` (which calls :func:`run`).
An asyncua server in a child process holds ``BENCH_TAGS`` UInt32 tags (default 1000) and writes
every one of them ``BENCH_HZ`` times a second (default 10), each write one more part. Each case
connects to it afresh, lets the initial values pass, then measures ``BENCH_SECONDS`` (default 10):

* ``asyncua client``: a subscription whose handler only counts (the baseline);
* ``OpcuaSource counter``: every tag a counter rule, every change a production event committed
  with fsync (``BENCH_DURABILITY``, default ``power``);
* ``OpcuaSource sample``: every tag a sample rule (``signal.sampled`` per change).

Figures are notifications per second received and applied, events queued per second, and this
process's CPU (the server runs in its own process) as a share of one core and per notification.
The server itself needs most of a core for 10,000 writes/s: on a busy machine it falls short,
and its own figure is printed at the end. Figures move from machine to machine: read them
beside the baseline measured in the same run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any, Literal

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asyncua import ua
from asyncua.client.client import Client

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.opcua.config import OpcuaConfig
from agent.sources.opcua.source import OpcuaSource
from tests.fixtures.opcua_server import NAMESPACE, OpcuaTestServer, bulk_identifier, free_port

WARMUP_SECONDS = 2.0
Durability = Literal["power", "process"]

#: received/s, applied/s, events queued/s, CPU share of one core
Figures = tuple[float, float, float, float]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the server (child process) ------------------------------------------------------------


async def serve(port: int, tags: int, hz: float) -> None:
    """Start the server, then write every tag ``hz`` times a second until SIGTERM."""
    server = OpcuaTestServer(port=port, bulk_tags=tags)
    await server.start()
    assert server._server is not None
    nodes = [node.nodeid for node in server._bulk]
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    tick, writes, late = 0, 0, 0
    started = time.monotonic()
    while not stop.is_set():
        tick += 1
        stamp = ua.DateTime.now(UTC)
        for nodeid in nodes:
            value = ua.DataValue(
                ua.Variant(tick, ua.VariantType.UInt32),
                SourceTimestamp=stamp,
                ServerTimestamp=stamp,
            )
            await server._server.write_attribute_value(nodeid, value)
        writes += len(nodes)
        delay = started + tick / hz - time.monotonic()
        if delay < 0:
            late += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(delay, 0))
    elapsed = time.monotonic() - started
    print(json.dumps({"server_writes_per_second": writes / elapsed, "late_ticks": late}))
    await server.stop()


# -- the cases -----------------------------------------------------------------------------


class Counting:
    """The baseline handler: counts notifications, nothing else."""

    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: Any, val: Any, data: Any) -> None:
        self.count += 1


async def measure(
    seconds: float,
    received: Callable[[], int],
    applied: Callable[[], int],
    events: Callable[[], int],
) -> Figures:
    await asyncio.sleep(WARMUP_SECONDS)
    r0, a0, e0, c0, t0 = received(), applied(), events(), cpu_seconds(), time.monotonic()
    await asyncio.sleep(seconds)
    r1, a1, e1, c1, t1 = received(), applied(), events(), cpu_seconds(), time.monotonic()
    wall = t1 - t0
    return (r1 - r0) / wall, (a1 - a0) / wall, (e1 - e0) / wall, (c1 - c0) / wall


async def baseline(endpoint: str, tags: int, seconds: float) -> Figures:
    client = Client(endpoint, timeout=10)
    await client.connect()
    try:
        idx = await client.get_namespace_index(NAMESPACE)
        handler = Counting()
        sub = await client.create_subscription(100, handler)
        nodes = [
            client.get_node(ua.NodeId.from_string(f"ns={idx};{bulk_identifier(i)}"))
            for i in range(tags)
        ]
        await sub.subscribe_data_change(nodes, queuesize=10)
        return await measure(seconds, lambda: handler.count, lambda: handler.count, lambda: 0)
    finally:
        await client.disconnect()


async def source(
    endpoint: str, rule: str, directory: Path, tags: int, seconds: float, durability: Durability
) -> Figures:
    node_options: dict[str, Any] = (
        {"event": "production.reported"} if rule == "counter" else {"unit": "pcs"}
    )
    config = OpcuaConfig.model_validate(
        {
            "endpoint": endpoint,
            "order": {"value": "MO/BENCH"},
            "nodes": [
                {
                    "name": f"tag{i}",
                    "namespace_uri": NAMESPACE,
                    "identifier": bulk_identifier(i),
                    "rule": rule,
                    **node_options,
                }
                for i in range(tags)
            ],
        }
    )
    queue = await QueueStore.open(
        directory / f"{rule}.db", "gw-bench", QueueConfig(durability=durability)
    )
    opcua = OpcuaSource(config, queue)
    task = asyncio.create_task(opcua.run())
    try:
        while not opcua.stats().connected:  # noqa: ASYNC110 (polling a stats snapshot)
            await asyncio.sleep(0.05)
        figures = await measure(
            seconds,
            lambda: opcua.stats().notifications,
            lambda: opcua.stats().applied,
            lambda: opcua.stats().events_queued,
        )
        stats = opcua.stats()
        print(
            f"    overflows {stats.overflows}, resyncs {stats.resyncs}, "
            f"buffered at end {stats.buffered}, queue commits {queue.stats().commits_total}"
        )
        return figures
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await queue.close()


async def measure_all(
    tags: int, hz: float, seconds: float, durability: Durability
) -> dict[str, Any]:
    """Start the server child, run every case against it, print the table; the figures."""
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("asyncua").setLevel(logging.ERROR)
    port = free_port()
    child = subprocess.Popen(  # noqa: ASYNC220 (started once, before anything runs)
        [sys.executable, __file__, "--serve", str(port), str(tags), str(hz)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        raise SystemExit("the server did not start")
    endpoint = f"opc.tcp://127.0.0.1:{port}/test/"
    print(
        f"{tags} tags x {hz:g} Hz = {tags * hz:,.0f} changes/s offered; "
        f"{seconds:g} s measured per case, durability {durability}"
    )
    print(
        f"{'case':28} {'received/s':>11} {'applied/s':>10} {'events/s':>9} {'CPU':>6} "
        f"{'CPU µs/notification':>20}"
    )
    result: dict[str, Any] = {"tags": tags, "hz": hz, "offered": tags * hz, "cases": {}}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            cases: list[tuple[str, Callable[[], Awaitable[Figures]]]] = [
                ("asyncua client (counting)", lambda: baseline(endpoint, tags, seconds)),
                (
                    "OpcuaSource counter",
                    lambda: source(endpoint, "counter", Path(tmp), tags, seconds, durability),
                ),
                (
                    "OpcuaSource sample",
                    lambda: source(endpoint, "sample", Path(tmp), tags, seconds, durability),
                ),
                ("asyncua client (again)", lambda: baseline(endpoint, tags, seconds)),
            ]
            for name, case in cases:
                got, applied, events, cpu = await case()
                per = cpu / got * 1e6 if got else float("nan")
                result["cases"][name] = {
                    "received": got,
                    "applied": applied,
                    "events": events,
                    "cpu_share": cpu,
                    "cpu_us": per,
                }
                print(
                    f"{name:28} {got:>11,.0f} {applied:>10,.0f} {events:>9,.0f} {cpu:>6.0%} "
                    f"{per:>20.0f}"
                )
    finally:
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=30)
    server = json.loads(out.strip().splitlines()[-1])
    print(
        f"server wrote {server['server_writes_per_second']:,.0f} values/s "
        f"({server['late_ticks']} late ticks)"
    )
    result.update(server)
    return result


def run(
    tags: int = 1000, hz: float = 10.0, seconds: float = 10.0, durability: Durability = "power"
) -> dict[str, Any]:
    """Every case against a server writing ``tags`` tags ``hz`` times a second."""
    return asyncio.run(measure_all(tags, hz, seconds, durability))


def main() -> None:
    run(
        tags=int(os.environ.get("BENCH_TAGS", "1000")),
        hz=float(os.environ.get("BENCH_HZ", "10")),
        seconds=float(os.environ.get("BENCH_SECONDS", "10")),
        durability="process" if os.environ.get("BENCH_DURABILITY") == "process" else "power",
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        logging.basicConfig(level=logging.ERROR)
        asyncio.run(serve(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])))
    else:
        main()
