"""Drain rate of a queued backlog through the uploader, to the relay stand-in and the real relay.

Run by hand: ``python3 bench/uploader_drain.py [--events N] [--target stand-in relay]
[--compression zstd none] [--validate] [--relay-durability power|process]``
(``UPLOADER_BENCH_EVENTS`` also sets N; default 1,000,000; ``--target`` defaults to the
stand-in only).

A queue is filled once with N events of about 200 bytes (durability ``process`` to fill fast),
then copied for each target and compression. For each, in the same run:

- baseline: the target receives pre-built, pre-signed batch bodies of the first
  ``min(N, 200,000)`` events from a plain httpx loop, one request at a time: the HTTP and
  receiver-side ceiling, with no queue reads, encoding, signing or acks;
- uploader: a QueueStore at durability ``power`` (fsync on every ack) and an Uploader with the
  default batch limits drain all N events to a fresh target; timed until the queue is empty.

Targets, each a separate process so it does not share the agent's core:

- ``stand-in`` (``tests/fixtures/receiver.py``) verifies every signature and Content-Digest,
  decompresses and checks seqs, and keeps the events in memory; with ``--validate`` it also
  validates every event with ``parse_batch`` (pydantic);
- ``relay``: the real relay, ``python -m cloud_relay run`` on loopback with a fresh SQLite
  inbox at ``--relay-durability`` (default ``power``, the relay's default: fsync per commit).
  It verifies, validates every event and commits before it answers; afterwards the inbox must
  hold events 1..N.

Prints events/s, the ratio to the baseline, the agent's CPU per event and the target's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from agent.queue.config import QueueConfig  # noqa: E402
from agent.queue.model import NewEvent  # noqa: E402
from agent.queue.store import QueueStore  # noqa: E402
from agent.uploader.body import BodyEncoder, Compression  # noqa: E402
from agent.uploader.config import RelayConfig  # noqa: E402
from agent.uploader.uploader import Uploader  # noqa: E402
from bench.relay_ingest import RelayProcess, register  # noqa: E402
from bench.relay_ingest import cpu_seconds as process_cpu_seconds  # noqa: E402
from wire.batch import BATCH_PATH  # noqa: E402
from wire.keys import load_private_key, write_keypair  # noqa: E402
from wire.signing import sign_request  # noqa: E402

GATEWAY_ID = "bench-gw"
WHEN = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
BASELINE_EVENTS = 200_000
FILL_CHUNK = 2000

Durability = Literal["power", "process"]


def _event(n: int) -> NewEvent:
    """A production report whose queued body is about 200 bytes."""
    return NewEvent(
        "production.reported",
        WHEN,
        "opcua:ns=2;s=L1",
        {"order": f"WH/MO/{n % 99999:05d}", "qty": 1.0},
    )


async def fill(path: Path, count: int) -> None:
    """Queue ``count`` events at ``path``."""
    queue = await QueueStore.open(path, GATEWAY_ID, QueueConfig(durability="process"))
    try:
        for start in range(0, count, FILL_CHUNK):
            await queue.enqueue([_event(n) for n in range(start, min(count, start + FILL_CHUNK))])
    finally:
        await queue.close()


class Target(Protocol):
    """A receiver of batches running in its own process."""

    url: str

    def cpu_seconds(self) -> float: ...

    def check(self, events: int) -> None: ...

    def stop(self) -> None: ...


class ReceiverProcess:
    """The relay stand-in in its own process."""

    def __init__(self, public_key: Path, validate: bool) -> None:
        args = [sys.executable, "-m", "tests.fixtures.receiver", "--gateway", GATEWAY_ID]
        args += ["--public-key", str(public_key)]
        if not validate:
            args.append("--no-validate")
        self._proc = subprocess.Popen(
            args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the receiver did not start")

    def stats(self) -> dict[str, object]:
        result: dict[str, object] = httpx.get(self.url + "/_stats").json()
        return result

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self._proc.pid)

    def check(self, events: int) -> None:
        stats = self.stats()
        if stats["acked"] != {GATEWAY_ID: events} or stats.get("duplicates", 0) != 0:
            raise RuntimeError(f"stand-in stats {stats}")

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


class RelayTarget:
    """The real relay on a fresh SQLite inbox with the gateway's key registered."""

    def __init__(self, directory: Path, key_path: Path, durability: Durability) -> None:
        directory.mkdir(parents=True, exist_ok=False)
        self._inbox = directory / "inbox.db"
        store_url = f"sqlite:///{self._inbox}"
        asyncio.run(register(store_url, {GATEWAY_ID: key_path}, durability))
        self._relay = RelayProcess(directory, "drain", store_url, durability=durability)
        self.url = self._relay.url

    def cpu_seconds(self) -> float:
        return self._relay.cpu_seconds()

    def check(self, events: int) -> None:
        with contextlib.closing(sqlite3.connect(f"file:{self._inbox}?mode=ro", uri=True)) as db:
            count, low, high = db.execute(
                "SELECT count(*), min(seq), max(seq) FROM events WHERE gateway_id = ?",
                (GATEWAY_ID,),
            ).fetchone()
        if (count, low, high) != (events, 1, events):
            raise RuntimeError(f"relay inbox holds {count} events, seq {low}..{high}")

    def stop(self) -> None:
        self._relay.stop()


def start_target(
    kind: str, directory: Path, key_path: Path, validate: bool, durability: Durability
) -> Target:
    """A fresh target of ``kind`` (``stand-in`` or ``relay``) that knows the gateway's key."""
    if kind == "relay":
        return RelayTarget(directory, key_path, durability)
    return ReceiverProcess(key_path.with_name(key_path.name + ".pub"), validate)


@dataclass(frozen=True)
class Settings:
    """What a baseline or a drain posts to."""

    target: str
    compression: Compression
    validate: bool
    durability: Durability


async def baseline(directory: Path, key_path: Path, settings: Settings, events: int) -> float:
    """Events/s of pre-built, pre-signed bodies posted by a plain keep-alive client."""
    queue = await QueueStore.open(directory / "queue.db", GATEWAY_ID, QueueConfig())
    encoder = BodyEncoder(GATEWAY_ID, settings.compression)
    config = RelayConfig()
    bodies = []
    after = 0
    try:
        while after < events:
            batch = await queue.read_batch(
                after, min(config.batch_max_events, events - after), config.batch_max_bytes
            )
            bodies.append(encoder.encode(batch))
            after = batch[-1].seq
    finally:
        await queue.close()
    target = await asyncio.to_thread(
        start_target,
        settings.target,
        directory / "baseline-target",
        key_path,
        settings.validate,
        settings.durability,
    )
    try:
        url = target.url + BATCH_PATH
        key = load_private_key(key_path)
        requests = []
        for body in bodies:
            headers = sign_request("POST", url, body.body, key)
            headers["Content-Type"] = "application/json"
            if body.content_encoding:
                headers["Content-Encoding"] = body.content_encoding
            requests.append((body.body, headers))
        async with httpx.AsyncClient(timeout=60) as client:
            start = time.perf_counter()
            for content, headers in requests:
                response = await client.post(url, content=content, headers=headers)
                response.raise_for_status()
            elapsed = time.perf_counter() - start
        target.check(after)
    finally:
        target.stop()
    return after / elapsed


@dataclass(frozen=True)
class Drain:
    """One uploader drain: rate, CPU per event on each side, bytes on the wire per event."""

    rate: float
    agent_cpu_us: float
    target_cpu_us: float
    wire_bytes: float


async def drain(directory: Path, key_path: Path, settings: Settings, events: int) -> Drain:
    """An Uploader draining the whole queue to a fresh target, timed until all are acked."""
    target = await asyncio.to_thread(
        start_target,
        settings.target,
        directory / "drain-target",
        key_path,
        settings.validate,
        settings.durability,
    )
    queue = await QueueStore.open(directory / "queue.db", GATEWAY_ID, QueueConfig())
    try:
        uploader = Uploader(
            RelayConfig(url=target.url, compression=settings.compression),
            queue,
            GATEWAY_ID,
            load_private_key(key_path),
        )
        target_cpu = target.cpu_seconds()
        cpu, start = time.process_time(), time.perf_counter()
        task = asyncio.create_task(uploader.run())
        while uploader.stats().acked_seq < events:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        target_cpu = target.cpu_seconds() - target_cpu
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        target.check(events)
        return Drain(
            events / elapsed,
            cpu / events * 1e6,
            target_cpu / events * 1e6,
            uploader.stats().bytes_sent / events,
        )
    finally:
        await queue.close()
        target.stop()


async def measure(
    events: int,
    targets: Sequence[str],
    compressions: Sequence[Compression],
    validate: bool,
    durability: Durability,
) -> list[dict[str, Any]]:
    """Fill once, then per target and compression the baseline and the drain; print the table."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="uploader-bench-") as tmp:
        work = Path(tmp)
        key_path = work / "gateway.pem"
        write_keypair(key_path)
        template = work / "template"
        start = time.perf_counter()
        await fill(template / "queue.db", events)
        print(f"filled {events:,} events in {time.perf_counter() - start:.1f} s", flush=True)
        for target in targets:
            for compression in compressions:
                settings = Settings(target, compression, validate, durability)
                run_dir = work / f"{target}-{compression}"
                shutil.copytree(template, run_dir)
                base = await baseline(run_dir, key_path, settings, min(events, BASELINE_EVENTS))
                result = await drain(run_dir, key_path, settings, events)
                rows.append(
                    {
                        "target": target,
                        "compression": compression,
                        "baseline_rate": base,
                        "rate": result.rate,
                        "ratio": result.rate / base,
                        "agent_cpu_us": result.agent_cpu_us,
                        "target_cpu_us": result.target_cpu_us,
                        "wire_bytes_per_event": result.wire_bytes,
                    }
                )
                print(f"  {target} {compression}: {result.rate:,.0f} events/s", flush=True)
                shutil.rmtree(run_dir)
    return rows


def run(
    events: int = 1_000_000,
    targets: Sequence[str] = ("stand-in",),
    compressions: Sequence[Compression] = ("zstd", "none"),
    validate: bool = False,
    relay_durability: Durability = "power",
) -> dict[str, Any]:
    """Measure and print the table; returns the rows (one per target and compression)."""
    rows = asyncio.run(measure(events, targets, compressions, validate, relay_durability))
    checks = "signature+digest+parse_batch" if validate else "signature+digest+JSON+seq"
    print(
        f"\n{events:,} events of ~200 B, default batch limits; stand-in checks {checks}; "
        f"relay: SQLite inbox, durability {relay_durability}"
    )
    print(
        f"{'target':<10}{'compression':<12}{'baseline ev/s':>15}{'uploader ev/s':>15}"
        f"{'ratio':>8}{'agent µs/ev':>13}{'target µs/ev':>14}{'wire B/ev':>11}"
    )
    for row in rows:
        print(
            f"{row['target']:<10}{row['compression']:<12}{row['baseline_rate']:>15,.0f}"
            f"{row['rate']:>15,.0f}{row['ratio']:>8.2f}{row['agent_cpu_us']:>13.1f}"
            f"{row['target_cpu_us']:>14.1f}{row['wire_bytes_per_event']:>11.1f}"
        )
    return {"events": events, "relay_durability": relay_durability, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--events", type=int, default=int(os.environ.get("UPLOADER_BENCH_EVENTS", 1_000_000))
    )
    parser.add_argument("--target", nargs="+", choices=["stand-in", "relay"], default=["stand-in"])
    parser.add_argument("--validate", action="store_true", help="the stand-in runs parse_batch")
    parser.add_argument(
        "--compression", nargs="+", choices=["zstd", "gzip", "none"], default=["zstd", "none"]
    )
    parser.add_argument("--relay-durability", choices=["power", "process"], default="power")
    args = parser.parse_args()
    run(args.events, args.target, args.compression, args.validate, args.relay_durability)


if __name__ == "__main__":
    main()
