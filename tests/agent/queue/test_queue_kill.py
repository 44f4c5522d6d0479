"""kill -9 in the middle of enqueueing: every seq printed after enqueue returned is on disk.

The child (``enqueue_loop.py``) prints each seq only after ``enqueue`` returned; the test kills
it at a random moment, reopens the queue and checks: nothing printed is missing, seqs are
gapless across all rounds, and each producer's state key matches its events (same commit).
``QUEUE_KILL_EVENTS`` bounds how many events a round may print before the kill (default 3000).
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore

LOOP = Path(__file__).with_name("enqueue_loop.py")
ROOT = Path(__file__).resolve().parents[3]
PRODUCERS = 8
MAX_EVENTS = int(os.environ.get("QUEUE_KILL_EVENTS", "3000"))


def _lines(proc: subprocess.Popen[bytes]) -> queue.Queue[str | None]:
    out: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        try:
            for raw in proc.stdout:
                out.put(raw.decode().strip())
        except ValueError:  # closed by the test after the child is gone
            pass
        out.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _run_and_kill(path: Path, durability: str, rnd: random.Random) -> list[int]:
    """Start the loop, kill -9 it after a random number of acknowledged seqs, return them all."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(LOOP), str(path), durability, str(PRODUCERS)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    lines = _lines(proc)
    printed: list[int] = []
    kill_after = rnd.randint(20, MAX_EVENTS)
    deadline = time.monotonic() + 60
    try:
        assert lines.get(timeout=30) == "ready"
        while len(printed) < kill_after:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            assert line is not None, "the enqueue loop exited by itself"
            printed.append(int(line.split()[1]))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # Lines already in the pipe were printed before the kill: they count too.
        while (line := lines.get(timeout=30)) is not None:
            if line:
                printed.append(int(line.split()[1]))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return printed


async def _contents(path: Path) -> tuple[list[int], Counter[int], dict[int, int]]:
    store = await QueueStore.open(path, "gw-kill", QueueConfig())
    try:
        assert store.stats().moved_aside == ()
        events = await store.read_batch(0, 10**7, 10**12)
        per_producer: Counter[int] = Counter(
            int(json.loads(e.body)["source"].split(":")[1]) for e in events
        )
        state = {}
        for k in range(PRODUCERS):
            value = await store.get_state(f"count-{k}")
            state[k] = int(value) if value is not None else 0
        return [e.seq for e in events], per_producer, state
    finally:
        await store.close()


@pytest.mark.parametrize("durability", ["power", "process"])
def test_kill_9_loses_no_acknowledged_event(tmp_path: Path, durability: str) -> None:
    rnd = random.Random()
    path = tmp_path / "queue.db"
    acknowledged: set[int] = set()
    for _ in range(3):
        acknowledged.update(_run_and_kill(path, durability, rnd))
        seqs, per_producer, state = asyncio.run(_contents(path))
        missing = acknowledged - set(seqs)
        assert not missing, f"acknowledged but lost: {sorted(missing)[:20]}"
        assert seqs == list(range(1, len(seqs) + 1)), "seqs are not gapless from 1"
        for k in range(PRODUCERS):
            assert per_producer[k] == state[k], f"producer {k}: state and events disagree"
