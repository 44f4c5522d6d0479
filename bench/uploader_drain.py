"""Drain rate of a queued backlog through the uploader to the relay stand-in on loopback.

Run by hand: ``python3 bench/uploader_drain.py [--events N] [--validate]``
(``UPLOADER_BENCH_EVENTS`` also sets N; default 1,000,000).

A queue is filled once with N events of about 200 bytes (durability ``process`` to fill fast),
then copied for each compression. For each, in the same run:

- baseline: the relay stand-in (a separate process, ``tests/fixtures/receiver.py``) receives
  pre-built, pre-signed batch bodies of the first ``min(N, 200,000)`` events from a plain httpx
  loop: the HTTP and relay-side ceiling, with no queue reads, encoding, signing or acks;
- uploader: a QueueStore at durability ``power`` (fsync on every ack) and an Uploader with the
  default batch limits drain all N events to a fresh stand-in; timed until the queue is empty.

The stand-in verifies every signature and Content-Digest, decompresses and checks seqs; with
``--validate`` it also validates every event with ``parse_batch`` (pydantic), which then bounds
the rate. Prints events/s, the ratio to the baseline and the agent's CPU per event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from agent.queue.config import QueueConfig  # noqa: E402
from agent.queue.model import NewEvent  # noqa: E402
from agent.queue.store import QueueStore  # noqa: E402
from agent.uploader.body import BodyEncoder, Compression  # noqa: E402
from agent.uploader.config import RelayConfig  # noqa: E402
from agent.uploader.uploader import Uploader  # noqa: E402
from wire.batch import BATCH_PATH  # noqa: E402
from wire.keys import load_private_key, write_keypair  # noqa: E402
from wire.signing import sign_request  # noqa: E402

GATEWAY_ID = "bench-gw"
WHEN = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
BASELINE_EVENTS = 200_000
FILL_CHUNK = 2000


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


class ReceiverProcess:
    """The relay stand-in in its own process, so it does not share the agent's core."""

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

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)


async def baseline(
    directory: Path, key_path: Path, compression: Compression, validate: bool, events: int
) -> float:
    """Events/s of pre-built, pre-signed bodies posted by a plain keep-alive client."""
    queue = await QueueStore.open(directory / "queue.db", GATEWAY_ID, QueueConfig())
    encoder = BodyEncoder(GATEWAY_ID, compression)
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
    receiver = ReceiverProcess(key_path.with_name(key_path.name + ".pub"), validate)
    try:
        url = receiver.url + BATCH_PATH
        key = load_private_key(key_path)
        requests = []
        for body in bodies:
            headers = sign_request("POST", url, body.body, key)
            if body.content_encoding:
                headers["Content-Encoding"] = body.content_encoding
            requests.append((body.body, headers))
        async with httpx.AsyncClient(timeout=60) as client:
            start = time.perf_counter()
            for content, headers in requests:
                response = await client.post(url, content=content, headers=headers)
                response.raise_for_status()
            elapsed = time.perf_counter() - start
        if receiver.stats()["acked"] != {GATEWAY_ID: after}:
            raise RuntimeError(f"baseline: receiver stats {receiver.stats()}")
    finally:
        receiver.stop()
    return after / elapsed


async def drain(
    directory: Path, key_path: Path, compression: Compression, validate: bool, events: int
) -> tuple[float, float, int]:
    """(events/s, agent CPU µs per event, wire bytes) of an Uploader draining the queue."""
    receiver = ReceiverProcess(key_path.with_name(key_path.name + ".pub"), validate)
    queue = await QueueStore.open(directory / "queue.db", GATEWAY_ID, QueueConfig())
    try:
        uploader = Uploader(
            RelayConfig(url=receiver.url, compression=compression),
            queue,
            GATEWAY_ID,
            load_private_key(key_path),
        )
        cpu, start = time.process_time(), time.perf_counter()
        task = asyncio.create_task(uploader.run())
        while uploader.stats().acked_seq < events:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        stats = receiver.stats()
        if stats["acked"] != {GATEWAY_ID: events} or stats["duplicates"] != 0:
            raise RuntimeError(f"drain: receiver stats {stats}")
        return events / elapsed, cpu / events * 1e6, uploader.stats().bytes_sent
    finally:
        await queue.close()
        receiver.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--events", type=int, default=int(os.environ.get("UPLOADER_BENCH_EVENTS", 1_000_000))
    )
    parser.add_argument("--validate", action="store_true", help="the stand-in runs parse_batch")
    parser.add_argument("--compression", nargs="+", default=["zstd", "none"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="uploader-bench-") as tmp:
        work = Path(tmp)
        key_path = work / "gateway.pem"
        write_keypair(key_path)
        template = work / "template"
        start = time.perf_counter()
        await fill(template / "queue.db", args.events)
        print(f"filled {args.events:,} events in {time.perf_counter() - start:.1f} s", flush=True)
        rows = []
        for compression in args.compression:
            run_dir = work / compression
            shutil.copytree(template, run_dir)
            base = await baseline(
                run_dir, key_path, compression, args.validate, min(args.events, BASELINE_EVENTS)
            )
            rate, cpu_us, wire = await drain(
                run_dir, key_path, compression, args.validate, args.events
            )
            rows.append((compression, base, rate, cpu_us, wire))
            shutil.rmtree(run_dir)
    checks = "signature+digest+parse_batch" if args.validate else "signature+digest+JSON+seq"
    print(f"\n{args.events:,} events of ~200 B, default batch limits, stand-in checks {checks}")
    print(
        f"{'compression':<12}{'baseline ev/s':>15}{'uploader ev/s':>15}{'ratio':>8}"
        f"{'agent CPU µs/ev':>17}{'wire B/ev':>11}"
    )
    for compression, base, rate, cpu_us, wire in rows:
        print(
            f"{compression:<12}{base:>15,.0f}{rate:>15,.0f}{rate / base:>8.2f}"
            f"{cpu_us:>17.1f}{wire / args.events:>11.1f}"
        )
    print(json.dumps({c: round(r) for c, _, r, _, _ in rows}))


if __name__ == "__main__":
    asyncio.run(main())
