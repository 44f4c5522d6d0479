"""Events/s into QueueStore beside raw sqlite3 batched inserts, and memory with a big queue.

Run by hand: ``python3 bench/queue_ingest.py [--seconds 2] [--rounds 3] [--skip-rss]``.
In the same run, on the same file system: raw ``sqlite3`` executemany of 200-byte rows into
the same table (WAL, 1 / 100 / 1,000 rows per commit, synchronous FULL and NORMAL), then
QueueStore at durability ``power`` (FULL) and ``process`` (NORMAL) with 1 and 50 concurrent
producers, each awaiting enqueue of 1 event or of 100. Figures are medians over the rounds;
ratios compare with raw SQLite at the same synchronous level. Then the RSS of a process holding
an open QueueStore with ``QUEUE_BENCH_RSS_EVENTS`` queued events (default 1,000,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.queue.config import QueueConfig
from agent.queue.model import NewEvent
from agent.queue.store import QueueStore

SYNC = {"power": "FULL", "process": "NORMAL"}
RAW_BATCHES = (1, 100, 1000)
SCENARIOS = ((1, 1), (50, 1), (1, 100), (50, 100))  # (producers, events per call)
WHEN = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def _event(n: int) -> NewEvent:
    """A production report whose queued body is about 200 bytes."""
    return NewEvent(
        "production.reported",
        WHEN,
        "opcua:ns=2;s=L1",
        {"order": f"WH/MO/{n % 99999:05d}", "qty": 1.0},
    )


def raw_sqlite(directory: Path, sync: str, per_commit: int, seconds: float) -> tuple[float, float]:
    """Rows/s of plain executemany into the queue's events table, and CPU µs per row."""
    path = directory / f"raw-{sync}-{per_commit}.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {sync}")
    conn.execute(
        "CREATE TABLE events (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, type TEXT NOT NULL, "
        "created_at REAL NOT NULL, body BLOB NOT NULL)"
    )
    body = b"x" * 200
    seq = 0
    start, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - start < seconds:
        rows = [
            (seq + i, "0190a3c4-1d2e-7f00-8000-000000000000", "production.reported", 0.0, body)
            for i in range(1, per_commit + 1)
        ]
        seq += per_commit
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    rate = seq / (time.perf_counter() - start)
    cpu_us = (time.process_time() - cpu) / seq * 1e6
    conn.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return rate, cpu_us


async def queue_rate(
    directory: Path, durability: str, producers: int, per_call: int, seconds: float
) -> tuple[float, float, int, float]:
    """Events/s into a fresh QueueStore; events per commit, body size, CPU µs per event."""
    path = directory / f"q-{durability}-{producers}-{per_call}.db"
    config = QueueConfig(durability=durability)  # type: ignore[arg-type]
    store = await QueueStore.open(path, "gw-bench", config)
    events = [_event(i) for i in range(per_call)]
    stop = time.perf_counter() + seconds

    async def produce() -> int:
        n = 0
        while time.perf_counter() < stop:
            await store.enqueue(events)
            n += per_call
        return n

    start, cpu = time.perf_counter(), time.process_time()
    counts = await asyncio.gather(*(produce() for _ in range(producers)))
    elapsed = time.perf_counter() - start
    cpu_us = (time.process_time() - cpu) / sum(counts) * 1e6
    stats = store.stats()
    (first,) = await store.read_batch(0, 1, 10**6)
    await store.close()
    return (
        sum(counts) / elapsed,
        stats.enqueued_total / max(1, stats.commits_total),
        len(first.body),
        cpu_us,
    )


def _median(values: list[float]) -> float:
    return statistics.median(values)


def throughput(seconds: float, rounds: int, directory: Path) -> dict[str, Any]:
    """Raw sqlite3 rows/s, then QueueStore events/s per scenario; printed and returned."""
    raw: dict[tuple[str, int], float] = {}
    raw_rows = []
    print(f"{'raw sqlite3 WAL, 200-byte rows':<44}{'rows/s':>12}{'CPU us/row':>11}")
    for sync in ("FULL", "NORMAL"):
        for per_commit in RAW_BATCHES:
            raw_runs = [raw_sqlite(directory, sync, per_commit, seconds) for _ in range(rounds)]
            raw[sync, per_commit] = rate = _median([r[0] for r in raw_runs])
            cpu_us = _median([r[1] for r in raw_runs])
            raw_rows.append(
                {"synchronous": sync, "rows_per_commit": per_commit, "rate": rate, "cpu_us": cpu_us}
            )
            label = f"  synchronous={sync:<7} {per_commit:>5} rows/commit"
            print(f"{label:<44}{rate:>12,.0f}{cpu_us:>11.1f}")
    print()
    head = (
        f"{'QueueStore':<44}{'events/s':>12}{'CPU us/ev':>11}{'ev/commit':>11}"
        f"{'vs raw same':>13}{'vs raw 1000':>13}"
    )
    print(head)
    queue_rows = []
    body = 0
    for durability in ("power", "process"):
        sync = SYNC[durability]
        for producers, per_call in SCENARIOS:
            runs = []
            for _ in range(rounds):
                runs.append(
                    asyncio.run(queue_rate(directory, durability, producers, per_call, seconds))
                )
                for p in directory.glob("q-*"):
                    p.unlink()
            rate = _median([r[0] for r in runs])
            ev_per_commit = _median([r[1] for r in runs])
            body = runs[0][2]
            cpu_us = _median([r[3] for r in runs])
            same = min(RAW_BATCHES, key=lambda b: abs(math.log(b / ev_per_commit)))
            queue_rows.append(
                {
                    "durability": durability,
                    "producers": producers,
                    "events_per_call": per_call,
                    "rate": rate,
                    "cpu_us": cpu_us,
                    "events_per_commit": ev_per_commit,
                    "raw_same": raw[sync, same],
                    "raw_same_rows_per_commit": same,
                    "raw_1000": raw[sync, 1000],
                }
            )
            label = f"  {durability:<7} {producers:>2} producers x {per_call:>3} ev/call"
            print(
                f"{label:<44}{rate:>12,.0f}{cpu_us:>11.1f}{ev_per_commit:>11,.0f}"
                f"{rate / raw[sync, same]:>12.2f}x{rate / raw[sync, 1000]:>12.2f}x"
            )
    print(f"  (queued body {body} bytes; 'vs raw same': raw at the nearest rows/commit;")
    print("   'vs raw 1000': raw at 1,000 rows/commit, same synchronous level)")
    return {"raw": raw_rows, "queue": queue_rows, "body_bytes": body}


def _size_mb(path: Path) -> float:
    return path.stat().st_size / 1e6


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def _fill(path: Path, count: int) -> None:
    store = await QueueStore.open(path, "gw-bench", QueueConfig(durability="process"))
    events = [_event(i) for i in range(1000)]
    done = store.stats().pending
    while done < count:
        await store.enqueue(events[: min(1000, count - done)])
        done += min(1000, count - done)
    await store.close()


async def _hold(path: Path) -> dict[str, float]:
    """Open the big queue, read, enqueue and ack a little; RSS at each step, in MB."""
    before = _rss_kib()
    start = time.perf_counter()
    store = await QueueStore.open(path, "gw-bench", QueueConfig())
    opened_s = time.perf_counter() - start
    after_open = _rss_kib()
    stats = store.stats()
    start = time.perf_counter()
    after = stats.acked_seq
    for _ in range(20):
        batch = await store.read_batch(after, 1000, 1024 * 1024)
        after = batch[-1].seq
    read_ms = (time.perf_counter() - start) / 20 * 1000
    await store.enqueue([_event(1)])
    await store.ack_through(stats.acked_seq + 1000)
    after_use = _rss_kib()
    await store.close()
    return {
        "pending": stats.pending,
        "file_mb": _size_mb(path),
        "open_seconds": opened_s,
        "read_batch_ms": read_ms,
        "rss_imports_mb": before / 1024,
        "rss_open_mb": after_open / 1024,
        "rss_used_mb": after_use / 1024,
    }


def memory(directory: Path, count: int) -> dict[str, float]:
    """RSS of a separate process holding an open QueueStore with ``count`` queued events."""
    path = directory / "big.db"
    print(f"\nQueueStore holding {count:,} queued events (a separate process):")
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--fill", str(path), str(count)], check=True)
    fill_s = time.perf_counter() - start
    print(f"  filled in {fill_s:.1f} s")
    held = subprocess.run(
        [sys.executable, __file__, "--hold", str(path)], check=True, capture_output=True, text=True
    )
    figures: dict[str, float] = json.loads(held.stdout)
    print(f"  pending {figures['pending']:,.0f}, file {figures['file_mb']:,.0f} MB")
    print(
        f"  open (quick_check included): {figures['open_seconds']:.2f} s; "
        f"read_batch of 1,000: {figures['read_batch_ms']:.2f} ms"
    )
    print(
        f"  RSS: interpreter + imports {figures['rss_imports_mb']:.1f} MB, after open "
        f"{figures['rss_open_mb']:.1f} MB, after reads, enqueue and ack "
        f"{figures['rss_used_mb']:.1f} MB"
    )
    return {**figures, "fill_seconds": fill_s}


def run(
    seconds: float = 2.0,
    rounds: int = 3,
    rss_events: int | None = 1_000_000,
    directory: Path | None = None,
) -> dict[str, Any]:
    """Throughput beside raw SQLite, then (unless ``rss_events`` is None) the big-queue RSS."""
    with tempfile.TemporaryDirectory(dir=directory, prefix="queue-bench-") as tmp:
        print(f"files in {tmp}; {rounds} rounds of {seconds:g} s, medians\n")
        result = throughput(seconds, rounds, Path(tmp))
        result["seconds"], result["rounds"] = seconds, rounds
        if rss_events is not None:
            result["rss"] = memory(Path(tmp), rss_events)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-rss", action="store_true")
    parser.add_argument(
        "--dir", type=Path, default=None, help="where the files go (default: a temp dir)"
    )
    parser.add_argument("--fill", nargs=2, metavar=("PATH", "COUNT"), help=argparse.SUPPRESS)
    parser.add_argument("--hold", metavar="PATH", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        asyncio.run(_fill(Path(args.fill[0]), int(args.fill[1])))
        return
    if args.hold:
        print(json.dumps(asyncio.run(_hold(Path(args.hold)))))
        return
    count = int(os.environ.get("QUEUE_BENCH_RSS_EVENTS", "1000000"))
    run(args.seconds, args.rounds, None if args.skip_rss else count, args.dir)


if __name__ == "__main__":
    main()
