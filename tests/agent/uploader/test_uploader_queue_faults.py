"""The uploader and its queue and supervisor: deletes retried, breakage not swallowed, restarts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import AgentError, TransientError
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.uploader.uploader import Uploader
from tests.agent.uploader.harness import GATEWAY_ID, fill, relay_config, running, wait_until
from tests.fixtures.receiver import Receiver


async def test_a_delete_the_queue_cannot_write_is_retried(
    queue: QueueStore,
    receiver: Receiver,
    private_key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await fill(queue, 30)
    real_ack = queue.ack_through
    failures = 0

    async def flaky_ack(seq: int) -> None:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise TransientError("database or disk is full")
        await real_ack(seq)

    monkeypatch.setattr(queue, "ack_through", flaky_ack)
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: receiver.acked(GATEWAY_ID) == 30, "the relay has all 30")
        await wait_until(lambda: uploader.stats().acked_seq == 30, "the queue deleted all 30")
    assert failures == 3
    assert queue.stats().pending == 0
    assert uploader.stats().last_error == (
        "cannot record the relay's acknowledgement: database or disk is full"
    )
    assert receiver.duplicates == 0  # uploads went on while the deletes were retried


async def test_a_closed_queue_ends_the_uploader_with_the_error(
    tmp_path: Path, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    queue = await QueueStore.open(tmp_path / "q.db", GATEWAY_ID, QueueConfig())
    await fill(queue, 5)
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    task = asyncio.create_task(uploader.run())
    await wait_until(lambda: uploader.stats().acked_seq == 5, "all 5 are acked")
    await queue.close()
    with pytest.raises(AgentError, match="closed"):
        await asyncio.wait_for(task, 10)


async def test_cancelling_lets_a_started_delete_finish(
    queue: QueueStore,
    receiver: Receiver,
    private_key: Ed25519PrivateKey,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await fill(queue, 10)
    real_ack = queue.ack_through
    started, release = asyncio.Event(), asyncio.Event()

    async def slow_ack(seq: int) -> None:
        started.set()
        await release.wait()
        await real_ack(seq)

    monkeypatch.setattr(queue, "ack_through", slow_ack)
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    task = asyncio.create_task(uploader.run())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    release.set()  # without the shield the cancellation would have dropped this delete
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert queue.stats().acked_seq == 10


async def test_runs_again_after_being_stopped(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    # A supervisor restarts the same component object after a failure.
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    await fill(queue, 5)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 5, "the first 5 are acked")
    await fill(queue, 5)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 10, "all 10 are acked")
    assert receiver.acked(GATEWAY_ID) == 10 and receiver.duplicates == 0
