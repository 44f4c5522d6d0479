"""The supervisor restarts a crashing component, counts it and logs the traceback."""

from __future__ import annotations

import asyncio
import logging

import pytest

from runtime.supervisor import Supervisor


async def test_a_crashing_component_is_restarted_counted_and_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runs = 0
    steady = asyncio.Event()

    async def component() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ConnectionResetError(f"store gone ({runs})")
        steady.set()
        await asyncio.Event().wait()

    supervisor = Supervisor("odoo writer", min_seconds=0.001, max_seconds=0.01)
    with caplog.at_level(logging.ERROR, "runtime.supervisor"):
        task = asyncio.create_task(supervisor.run(component))
        try:
            async with asyncio.timeout(10):
                await steady.wait()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    stats = supervisor.stats()
    assert (stats.restarts, stats.last_crash) == (2, "ConnectionResetError: store gone (2)")
    crashes = [r for r in caplog.records if r.msg == "%s crashed; restarting"]
    assert len(crashes) == 2
    assert all(r.exc_info and r.exc_info[0] is ConnectionResetError for r in crashes)


async def test_a_component_that_returns_is_started_again() -> None:
    runs = 0
    third = asyncio.Event()

    async def component() -> None:
        nonlocal runs
        runs += 1
        if runs == 3:
            third.set()
            await asyncio.Event().wait()

    supervisor = Supervisor("writer", min_seconds=0.001, max_seconds=0.01)
    task = asyncio.create_task(supervisor.run(component))
    try:
        async with asyncio.timeout(10):
            await third.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert supervisor.stats().restarts == 2
    assert supervisor.stats().last_crash is None
