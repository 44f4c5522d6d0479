"""kill -9 of an agent draining a backlog: the relay ends with every seq exactly once, in order.

Size with ``UPLOADER_KILL9_EVENTS`` (default 20,000); ``UPLOADER_KILL9_SEED`` replays a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from tests.agent.uploader.harness import GATEWAY_ID, fill
from tests.fixtures.receiver import Receiver
from wire.keys import write_keypair

ROOT = Path(__file__).resolve().parents[3]
EVENTS = int(os.environ.get("UPLOADER_KILL9_EVENTS", "20000"))
KILLS = 3
BATCH_MAX_EVENTS = 250


async def start_agent(tmp_path: Path, key: Path, url: str, run: int) -> asyncio.subprocess.Process:
    with (tmp_path / f"agent-{run}.log").open("wb") as log:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.agent.uploader.drain_agent",
            str(tmp_path / "queue.db"),
            GATEWAY_ID,
            str(key),
            url,
            str(BATCH_MAX_EVENTS),
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=log,
            stderr=log,
        )


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill9_while_draining_loses_nothing_and_stores_nothing_twice(
    tmp_path: Path, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    seed = int(os.environ.get("UPLOADER_KILL9_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    key = tmp_path / "gateway.pem"
    write_keypair(key, private_key)

    queue = await QueueStore.open(tmp_path / "queue.db", GATEWAY_ID, QueueConfig())
    try:
        await fill(queue, EVENTS, chunk=2000)
        enqueued_ids = [e.id for e in await queue.read_batch(0, EVENTS, 2**62)]
    finally:
        await queue.close()
    assert len(enqueued_ids) == EVENTS

    loop = asyncio.get_running_loop()
    thresholds = sorted(rng.uniform(0.05, 0.9) * EVENTS for _ in range(KILLS))
    for run, threshold in enumerate(thresholds):
        agent = await start_agent(tmp_path, key, receiver.url, run)
        deadline = loop.time() + 120
        while receiver.acked(GATEWAY_ID) < threshold and agent.returncode is None:
            assert loop.time() < deadline, f"run {run}: stuck below {threshold:.0f} (seed {seed})"
            await asyncio.sleep(0.002)
        assert agent.returncode is None, f"run {run} ended before it was killed (seed {seed})"
        await asyncio.sleep(rng.uniform(0, 0.02))  # land anywhere in a request/ack cycle
        agent.send_signal(signal.SIGKILL)
        assert await agent.wait() == -signal.SIGKILL

    agent = await start_agent(tmp_path, key, receiver.url, KILLS)
    assert await asyncio.wait_for(agent.wait(), 120) == 0, (tmp_path / "agent-3.log").read_text()

    assert receiver.stored_ids(GATEWAY_ID) == enqueued_ids, f"seed {seed}"
    assert not receiver.id_mismatches
    assert set(receiver.statuses()) == {200}, "the agent never sent past the relay's point"
    seqs = [seq for _, seq, _ in receiver.received]
    assert len(seqs) == EVENTS + receiver.duplicates
    queue = await QueueStore.open(tmp_path / "queue.db", GATEWAY_ID, QueueConfig())
    try:
        assert queue.stats().pending == 0
        assert queue.stats().acked_seq == EVENTS
    finally:
        await queue.close()
    print(f"seed {seed}: {receiver.duplicates} duplicates resent after kills, answered 200")
