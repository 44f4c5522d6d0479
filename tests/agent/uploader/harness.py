"""Building blocks shared by the uploader tests: events, configs, waiting, running."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from agent.queue.model import NewEvent
from agent.queue.store import QueueStore
from agent.uploader.config import RelayConfig
from agent.uploader.uploader import Uploader
from tests.fixtures.receiver import Receiver

GATEWAY_ID = "gw-test-1"


def relay_config(receiver: Receiver, **overrides: Any) -> RelayConfig:
    """Fast retries and no batching delay unless a test asks for them."""
    options: dict[str, Any] = {
        "url": receiver.url,
        "batch_max_age_ms": 0,
        "backoff_initial_seconds": 0.01,
        "backoff_max_seconds": 0.05,
        "timeout_seconds": 10.0,
    }
    options.update(overrides)
    return RelayConfig(**options)


def new_event(n: int, *, pad: int = 0) -> NewEvent:
    """A valid scrap report; ``pad`` (up to 1024) lengthens it by that many bytes."""
    data: dict[str, Any] = {"order": f"WH/MO/{n:05d}", "product": "P-100", "qty": 1.0}
    if pad:
        data["reason"] = "r" * pad
    return NewEvent(type="scrap.reported", occurred_at=datetime.now(UTC), source="test", data=data)


async def fill(queue: QueueStore, count: int, *, pad: int = 0, chunk: int = 1000) -> list[int]:
    """Enqueue ``count`` events; returns their seqs."""
    seqs: list[int] = []
    for start in range(0, count, chunk):
        results = await queue.enqueue(
            [new_event(n, pad=pad) for n in range(start, min(count, start + chunk))]
        )
        seqs.extend(r.seq for r in results if r.seq is not None)
    return seqs


async def wait_until(condition: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.005)


@contextlib.asynccontextmanager
async def running(uploader: Uploader) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``uploader`` in a task; a crash of the task fails the test."""
    task = asyncio.create_task(uploader.run())
    try:
        yield task
    finally:
        if task.done():
            task.result()  # re-raise what made it stop
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def delivered_in_order(receiver: Receiver, count: int) -> bool:
    """The relay holds exactly seq 1..count."""
    return receiver.acked(GATEWAY_ID) == count
