"""What the demo watches while it runs: the agent's ``/healthz``, the relay's admin API and the
relay's Odoo writer, one progress line a second, and the waits for each stage to finish."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx

from agent.demo.line import LineTally
from agent.demo.odoo import WriterFigures, parked_orders, writer_figures
from agent.demo.proxy import CuttableProxy


@dataclass(frozen=True)
class Watch:
    """Where to look: the agent's health port, the relay's port and admin token, the line."""

    client: httpx.AsyncClient
    health_port: int
    relay_port: int
    gateway_id: str
    admin_token: str
    tally: LineTally

    @property
    def admin(self) -> dict[str, str]:
        """Headers of the relay's admin API."""
        return {"Authorization": f"Bearer {self.admin_token}"}


@dataclass(frozen=True)
class Snapshot:
    """One reading of the agent, the relay and its writer (empty or -1 where unreachable)."""

    agent: dict[str, Any]
    relay_acked: int
    writer: WriterFigures | None

    @property
    def queue(self) -> dict[str, Any]:
        """The agent's queue figures."""
        queue: dict[str, Any] = self.agent.get("components", {}).get("queue", {})
        return queue

    def progress(self, elapsed: float, tally: LineTally, cut: bool) -> str:
        """The progress line: the line, the agent, the relay, Odoo."""
        queue = self.queue
        writer = self.writer.text() if self.writer else "odoo writer ?"
        return (
            f"{elapsed:5.0f}s  line {sum(tally.good.values()):5d} good"
            f" {sum(tally.scrap.values()):3d} scrap | agent read"
            f" {queue.get('enqueued_total', 0):5d} queued {queue.get('pending', 0):5d}"
            f" | relay stored through seq {self.relay_acked:5d} | {writer}"
            f" | {self.agent.get('status', '?'):5s}{'  WAN CUT' if cut else ''}"
        )


#: Over the progress lines; "stored" counts every event, "posted" only those Odoo takes.
HEADER = (
    f"{'time':>5}  {'the line makes':<26}"
    f" | {'the agent: read, waiting':<29}"
    f" | {'the relay: events stored':<30}"
    f" | {'Odoo: events posted':<25}"
    " | agent health"
)
TELEMETRY_NOTE = (
    "The relay stores more events than it posts: the line's temperature readings "
    "(signal.sampled telemetry) are kept at the relay and never posted to Odoo."
)


async def take_snapshot(watch: Watch) -> Snapshot:
    """Read the agent's health page, the gateway's ack point and the writer's figures."""
    client = watch.client
    agent: dict[str, Any] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        agent = (await client.get(f"http://127.0.0.1:{watch.health_port}/healthz")).json()
    relay_acked = -1
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        url = f"http://127.0.0.1:{watch.relay_port}/v1/gateways/{watch.gateway_id}"
        relay_acked = int((await client.get(url, headers=watch.admin)).json()["acked_seq"])
    return Snapshot(agent, relay_acked, await writer_figures(client, watch.relay_port))


async def watch_production(args: argparse.Namespace, watch: Watch, proxy: CuttableProxy) -> None:
    """Print progress for ``args.duration`` seconds, cutting the WAN half-way for
    ``args.outage_seconds``."""
    start = time.monotonic()
    outage_at = args.duration / 2 - args.outage_seconds / 2
    outage_until = outage_at + args.outage_seconds
    print(TELEMETRY_NOTE)
    print(HEADER)
    while (elapsed := time.monotonic() - start) < args.duration:
        if args.outage_seconds > 0 and outage_at <= elapsed < outage_until and not proxy.is_cut:
            print("--- WAN outage: the link to the relay is cut ---")
            await proxy.cut()
        elif proxy.is_cut and elapsed >= outage_until:
            print("--- WAN restored ---")
            await proxy.restore()
        snap = await take_snapshot(watch)
        print(snap.progress(elapsed, watch.tally, proxy.is_cut), flush=True)
        await asyncio.sleep(1.0)


class _Printer:
    """Prints a progress line only when something in it changed."""

    def __init__(self) -> None:
        self._start = time.monotonic()
        self._last = ""

    def show(self, snap: Snapshot, tally: LineTally) -> None:
        line = snap.progress(time.monotonic() - self._start, tally, False)
        rest = line.split("s ", 1)[1]
        if rest != self._last:
            print(line, flush=True)
            self._last = rest


async def wait_until_drained(watch: Watch, limit_seconds: float = 120.0) -> bool:
    """Wait until the agent's queue is empty and the relay has stored all of it."""
    deadline = time.monotonic() + limit_seconds
    printer = _Printer()
    settled = 0
    while time.monotonic() < deadline:
        snap = await take_snapshot(watch)
        printer.show(snap, watch.tally)
        queue = snap.queue
        done = queue.get("pending") == 0 and snap.relay_acked == queue.get("acked_seq", -1)
        settled = settled + 1 if done else 0
        if settled >= 2:  # two quiet readings: the sources have delivered their last values
            return True
        await asyncio.sleep(1.0)
    print(f"the queue did not drain within {limit_seconds:.0f} s", file=sys.stderr)
    return False


async def wait_until_written(watch: Watch, limit_seconds: float = 120.0) -> bool:
    """Wait until the relay's writer has nothing pending on two readings in a row; else say
    which orders Odoo refuses and why."""
    deadline = time.monotonic() + limit_seconds
    printer = _Printer()
    before: WriterFigures | None = None
    while time.monotonic() < deadline:
        snap = await take_snapshot(watch)
        printer.show(snap, watch.tally)
        now = snap.writer
        if now and before and now.pending == before.pending == 0 and now.posted == before.posted:
            return True
        before = now
        await asyncio.sleep(1.0)
    print(f"the Odoo writer did not finish within {limit_seconds:.0f} s", file=sys.stderr)
    for parked in await parked_orders(watch.client, watch.relay_port, watch.admin):
        print(f"  parked {parked}", file=sys.stderr)
    return False
