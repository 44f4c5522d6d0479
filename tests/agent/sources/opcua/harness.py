"""Runs an :class:`OpcuaSource` on a test server with a real queue, and reads what it queued."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.opcua.config import OpcuaConfig
from agent.sources.opcua.source import OpcuaSource, OpcuaStats
from tests.fixtures.opcua_server import NAMESPACE, VARIABLES, OpcuaTestServer

GATEWAY = "gw-opcua"
WAIT_SECONDS = 15.0
ORDER_FROM_NODE = {"node": {"namespace_uri": NAMESPACE, "identifier": VARIABLES["order"][0]}}


def node(name: str, variable: str, rule: str, **options: Any) -> dict[str, Any]:
    """A node rule on one of the test server's variables."""
    return {
        "name": name,
        "namespace_uri": NAMESPACE,
        "identifier": VARIABLES[variable][0],
        "rule": rule,
        **options,
    }


def make_config(
    endpoint: str,
    nodes: list[dict[str, Any]],
    order: Mapping[str, Any] | None = ORDER_FROM_NODE,
    **options: Any,
) -> OpcuaConfig:
    """Options for a source on ``endpoint``; the order comes from the order node by default."""
    return OpcuaConfig.model_validate(
        {
            "endpoint": endpoint,
            "nodes": nodes,
            "order": order,
            "reconnect_min_seconds": 0.05,
            "reconnect_max_seconds": 0.5,
            "watchdog_interval_seconds": 0.5,
            **options,
        }
    )


async def wait_until(
    condition: Callable[[], bool], what: str, within: float = WAIT_SECONDS
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


async def wait_until_async(
    condition: Callable[[], Awaitable[bool]], what: str, within: float = WAIT_SECONDS
) -> None:
    """Like :func:`wait_until` for a condition that has to await (a queue read)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


@dataclass
class Running:
    """A running source, its queue and the server it reads."""

    server: OpcuaTestServer
    queue: QueueStore
    source: OpcuaSource
    task: asyncio.Task[None]

    def stats(self) -> OpcuaStats:
        if self.task.done():
            self.task.result()  # surface a crash instead of waiting for a timeout
        return self.source.stats()

    async def events(self) -> list[dict[str, Any]]:
        """Every queued event, in seq order, as its wire JSON."""
        stored = await self.queue.read_batch(0, 1_000_000, 1 << 40)
        return [json.loads(e.body) for e in stored]

    async def wait_connected(self, sessions: int = 1) -> None:
        await wait_until(
            lambda: self.stats().connected and self.stats().reconnects >= sessions - 1,
            f"connected (session {sessions})",
        )

    async def wait_settled(self, notifications: int) -> None:
        """Wait until at least ``notifications`` arrived and everything received is applied."""

        def settled() -> bool:
            s = self.stats()
            return s.notifications >= notifications and s.applied == s.notifications - s.overflows

        await wait_until(settled, f"{notifications} notifications applied")

    async def wait_events(self, count: int, kind: str | None = None) -> list[dict[str, Any]]:
        """Wait until ``count`` events (of type ``kind``) are queued; return them all."""
        found: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            self.stats()
            found = [e for e in await self.events() if kind is None or e["type"] == kind]
            if len(found) >= count:
                return found
            if loop.time() > deadline:
                raise AssertionError(f"timed out waiting for {count} events, got {found}")
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_source(
    server: OpcuaTestServer, directory: Path, config: OpcuaConfig, **queue_options: Any
) -> AsyncIterator[Running]:
    """Open the queue in ``directory`` and run a source on it until the block ends."""
    queue_options.setdefault("flush_interval_ms", 1.0)
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    queue = await QueueStore.open(directory / "queue.db", GATEWAY, QueueConfig(**queue_options))
    try:
        source = OpcuaSource(config, queue)
        task = asyncio.create_task(source.run())
        try:
            yield Running(server, queue, source, task)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await queue.close()


def quantities(events: list[dict[str, Any]], kind: str = "production.reported") -> list[float]:
    return [e["data"]["qty"] for e in events if e["type"] == kind]
