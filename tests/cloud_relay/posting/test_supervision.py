"""A writer whose store keeps failing is restarted by its supervisor, and once it has made no
progress for ``stall_seconds`` the relay's watchdog probe says so."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from cloud_relay.app import health_probe, supervised_stats
from runtime.supervisor import Supervisor
from tests.cloud_relay.posting.harness import FAST, rig


async def eventually(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not check():
        assert loop.time() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.01)


async def test_a_failing_store_restarts_the_writer_then_withholds_the_watchdog(
    tmp_path: Path,
) -> None:
    config = FAST.model_copy(update={"stall_seconds": 0.5})
    async with rig(tmp_path, config=config, start=False) as r:
        await r.store.close()  # from now on every posting store call fails
        supervisor = Supervisor("Odoo writer", min_seconds=0.01, max_seconds=0.05)
        stats = supervised_stats(r.writer, supervisor)
        probe = health_probe(r.inbox, r.writer)
        task = asyncio.create_task(supervisor.run(r.writer.run))
        try:
            assert await probe()
            await eventually(lambda: stats().restarts >= 2, "the writer was restarted twice")
            await eventually(lambda: not r.writer.healthy(), "the writer counts as stalled")
            assert not await probe()
            now = stats()
            assert not now.healthy
            assert now.last_error is not None and "not open" in now.last_error
            assert now.last_crash is not None and "not open" in now.last_crash
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
