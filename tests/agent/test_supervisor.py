"""A crashing component is restarted with backoff, counted, and its last crash kept in words."""

from __future__ import annotations

import asyncio

import pytest

from runtime.supervisor import Supervisor


async def test_crashes_are_counted_and_the_component_restarted() -> None:
    supervisor = Supervisor("flaky", min_seconds=0.001, max_seconds=0.01)
    runs = 0
    steady = asyncio.Event()

    async def component() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise RuntimeError(f"boom {runs}")
        steady.set()
        await asyncio.Event().wait()  # runs until cancelled

    task = asyncio.create_task(supervisor.run(component))
    await asyncio.wait_for(steady.wait(), timeout=10)
    assert supervisor.stats().restarts == 2
    assert supervisor.stats().last_crash == "RuntimeError: boom 2"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert runs == 3  # cancelling stops it for good: no restart after a cancel
