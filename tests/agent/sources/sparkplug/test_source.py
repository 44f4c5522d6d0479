"""The Sparkplug B source against a real mosquitto and an edge node speaking protobuf."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.health.page import render_page
from agent.health.status import assess
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.sparkplug.config import SparkplugConfig
from agent.sources.sparkplug.source import SparkplugSource
from tests.agent.sources.sparkplug.edge_node import BOOLEAN, UINT32, EdgeNode, MetricDef
from tests.fixtures.mosquitto import Mosquitto, mosquitto, publish_qos1

__all__ = ["mosquitto"]

WAIT_SECONDS = 20.0
GROUP = "line1"
HOST_ID = "plant-link-test"


def config(broker: Mosquitto, **options: Any) -> SparkplugConfig:
    return SparkplugConfig.model_validate(
        {
            "group_id": GROUP,
            "broker": {
                "host": broker.host,
                "port": broker.port,
                "reconnect_min_seconds": 0.05,
                "reconnect_max_seconds": 0.5,
            },
            "order": {"value": "MO/SPB/1"},
            "rebirth_interval_seconds": 0.2,
            "metrics": [
                {
                    "name": "good",
                    "node": "press-1",
                    "metric": "Line1/GoodParts",
                    "rule": "counter",
                    "event": "production.reported",
                    "uom": "Units",
                },
                {
                    "name": "running",
                    "node": "press-1",
                    "metric": "Line1/Running",
                    "rule": "state",
                    "states": {"true": "operation.started", "false": "operation.paused"},
                    "operation": "Pressing",
                },
            ],
            **options,
        }
    )


def edge_node(broker: Mosquitto, **options: Any) -> EdgeNode:
    return EdgeNode(
        broker.host,
        broker.port,
        GROUP,
        "press-1",
        {
            "Line1/GoodParts": MetricDef(1, UINT32, 0),
            "Line1/Running": MetricDef(2, BOOLEAN, False),
        },
        **options,
    )


async def wait_until(condition: Callable[[], bool], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


class Running:
    def __init__(self, source: SparkplugSource, queue: QueueStore, task: asyncio.Task[None]):
        self.source, self.queue, self.task = source, queue, task

    def stats(self) -> Any:
        if self.task.done():
            self.task.result()
        return self.source.stats()

    async def events(self) -> list[dict[str, Any]]:
        stored = await self.queue.read_batch(0, 1_000_000, 1 << 40)
        return [json.loads(e.body) for e in stored]

    async def produced(self) -> int:
        return sum(
            e["data"]["qty"] for e in await self.events() if e["type"] == "production.reported"
        )

    async def wait_produced(self, total: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while (got := await self.produced()) != total:
            self.stats()
            if got > total:
                pytest.fail(f"counted {got}, more than the {total} made")
            if loop.time() > deadline:
                pytest.fail(f"timed out: counted {got} of {total}")
            await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(directory: Path, cfg: SparkplugConfig) -> AsyncIterator[Running]:
    queue = await QueueStore.open(
        directory / "queue.db", "gw-spb", QueueConfig(flush_interval_ms=1.0)
    )
    try:
        source = SparkplugSource(cfg, queue, "edge-agent-gw-spb")
        task = asyncio.create_task(source.run())
        run = Running(source, queue, task)
        try:
            await wait_until(lambda: run.stats().connected, "the source to connect")
            yield run
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await queue.close()


async def test_births_and_data_by_alias_become_events(mosquitto: Mosquitto, tmp_path: Path) -> None:
    async with running(tmp_path, config(mosquitto)) as run:
        node = edge_node(mosquitto)
        await asyncio.to_thread(node.connect)
        try:
            await wait_until(lambda: run.stats().nodes_online == 1, "the birth")
            for value in (3, 7, 12):
                await asyncio.to_thread(node.set, "Line1/GoodParts", value)
            await asyncio.to_thread(node.set, "Line1/Running", True)
            await run.wait_produced(12)
            events = await run.events()
            assert [e["data"]["qty"] for e in events if e["type"] == "production.reported"] == [
                3,
                4,
                5,
            ]
            assert {e["source"] for e in events} == {"sparkplug:good", "sparkplug:running"}
            # The birth's Running=false is a first state, then the change to true.
            await wait_until(lambda: run.stats().events_queued == 5, "both states as events")
            states = [e["type"] for e in await run.events() if e["source"] == "sparkplug:running"]
            assert states == ["operation.paused", "operation.started"]
            first = next(e for e in events if e["type"] == "production.reported")
            assert first["data"] == {"order": "MO/SPB/1", "qty": 3, "uom": "Units"}
            assert run.stats().rebirths_requested == 0
        finally:
            await asyncio.to_thread(node.disconnect)
        await wait_until(lambda: run.stats().offline == ("press-1",), "the death")
        health = assess({"sparkplug": run.stats()})
        assert health.status == "amber"
        assert any("edge nodes offline: press-1" in r for r in health.reasons)
        page = render_page(health, {"sparkplug": run.stats()}, {}, datetime.now(UTC))
        assert f"Sparkplug B broker {mosquitto.host}:{mosquitto.port}" in page
        assert "edge nodes offline: press-1" in page


async def test_a_seq_gap_asks_for_a_rebirth_and_counts_stay_exact(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running(tmp_path, config(mosquitto)) as run:
        node = edge_node(mosquitto)
        await asyncio.to_thread(node.connect)
        try:
            await wait_until(lambda: run.stats().nodes_online == 1, "the birth")
            await asyncio.to_thread(node.set, "Line1/GoodParts", 5)
            await asyncio.to_thread(node.set, "Line1/GoodParts", 9, skip_seq=2)  # two lost
            await wait_until(lambda: node.rebirth_requests == 1, "a rebirth request")
            assert run.stats().seq_gaps == 1
            assert run.stats().last_rebirth_reason == "seq gap: expected 2, got 4"
            await wait_until(lambda: node.births == 2, "the rebirth")
            await asyncio.to_thread(node.set, "Line1/GoodParts", 11)
            await run.wait_produced(11)
        finally:
            await asyncio.to_thread(node.disconnect)


async def test_data_before_birth_asks_for_a_rebirth(mosquitto: Mosquitto, tmp_path: Path) -> None:
    node = edge_node(mosquitto)
    await asyncio.to_thread(node.connect)  # born before the agent listens
    try:
        async with running(tmp_path, config(mosquitto)) as run:
            await asyncio.to_thread(node.set, "Line1/GoodParts", 4)  # by alias: unreadable
            await wait_until(lambda: node.rebirth_requests >= 1, "a rebirth request")
            assert run.stats().unborn_data >= 1
            await wait_until(lambda: run.stats().nodes_online == 1, "the rebirth")
            await asyncio.to_thread(node.set, "Line1/GoodParts", 6)
            await run.wait_produced(2)  # 4 was the first value this agent ever read: baseline
    finally:
        await asyncio.to_thread(node.disconnect)


async def test_an_edge_node_restart_with_a_counter_reset_counts_exactly(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running(tmp_path, config(mosquitto)) as run:
        node = edge_node(mosquitto)
        await asyncio.to_thread(node.connect)
        try:
            await wait_until(lambda: run.stats().nodes_online == 1, "the birth")
            await asyncio.to_thread(node.set, "Line1/GoodParts", 40)
            await run.wait_produced(40)
            await asyncio.to_thread(node.restart, {"Line1/GoodParts": 0})
            await wait_until(lambda: run.stats().nodes_online == 1, "the new birth")
            for value in (2, 5):
                await asyncio.to_thread(node.set, "Line1/GoodParts", value)
            await run.wait_produced(45)
            assert run.stats().bdseq_mismatches == 0
        finally:
            await asyncio.to_thread(node.disconnect)


async def test_primary_host_store_and_forward_counts_what_was_made(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    cfg = config(mosquitto, host_id=HOST_ID)
    node = edge_node(mosquitto, primary_host=HOST_ID)
    made = 0
    async with running(tmp_path, cfg) as run:
        await asyncio.to_thread(node.connect)
        await wait_until(lambda: node.host_online and run.stats().nodes_online == 1, "online")
        for made in (3, 8):
            await asyncio.to_thread(node.set, "Line1/GoodParts", made)
        await run.wait_produced(8)
    try:
        # The agent is away: its STATE says offline, the node keeps what it makes.
        await wait_until(lambda: not node.host_online, "the host's death certificate")
        for made in (10, 15, 21):
            await asyncio.to_thread(node.set, "Line1/GoodParts", made)
        assert len(node.kept) == 3
        async with running(tmp_path, cfg) as run:
            await run.wait_produced(made)
            await wait_until(lambda: not node.kept, "the kept values forwarded")
            await asyncio.to_thread(node.set, "Line1/GoodParts", 30)
            await run.wait_produced(30)
            assert run.stats().primary_host == HOST_ID
            # The forwarded values are older than the new birth, which already holds them.
            assert run.stats().stale_values == 3
    finally:
        await asyncio.to_thread(node.disconnect)


async def test_a_payload_that_is_not_sparkplug_is_rejected_and_traffic_goes_on(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    async with running(tmp_path, config(mosquitto)) as run:
        node = edge_node(mosquitto)
        await asyncio.to_thread(node.connect)
        try:
            await wait_until(lambda: run.stats().nodes_online == 1, "the birth")
            bad = [(f"spBv1.0/{GROUP}/NDATA/press-1", b"\xff\xff not protobuf")]
            await asyncio.to_thread(publish_qos1, mosquitto.host, mosquitto.port, bad)
            await wait_until(lambda: run.stats().rejected == 1, "the reject")
            last = run.stats().last_reject
            assert last is not None
            assert last.startswith(f"spBv1.0/{GROUP}/NDATA/press-1: not a Sparkplug B payload")
            assert assess({"sparkplug": run.stats()}).status == "amber"  # a recent reject
            await asyncio.to_thread(node.set, "Line1/GoodParts", 3)
            await run.wait_produced(3)
        finally:
            await asyncio.to_thread(node.disconnect)
