"""The OPC UA source against a real asyncua server, with a real queue underneath."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.queue.model import NewEvent
from tests.agent.sources.opcua.conftest import BULK_TAGS
from tests.agent.sources.opcua.harness import (
    make_config,
    node,
    quantities,
    running_source,
    wait_until,
    wait_until_async,
)
from tests.fixtures.opcua_server import NAMESPACE, OpcuaTestServer, bulk_identifier
from wire.events import format_timestamp

pytestmark = pytest.mark.asyncio(loop_scope="module")

GOOD_KEY = f"opcua:counter:good:nsu={NAMESPACE};s=Line1.GoodParts"
GOOD = node("good", "good", "counter", event="production.reported", uom="Units", workcenter="WC-1")


async def test_counter_growth_becomes_production_events(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    await line_server.write("order", "MO/0001")
    config = make_config(line_server.endpoint, [GOOD])
    async with running_source(line_server, tmp_path, config) as run:
        await run.wait_connected()
        await run.wait_settled(3)  # the order read, then both nodes' initial values
        stamp = datetime(2026, 3, 1, 6, 0, 0, 123456, tzinfo=UTC)
        await line_server.write("good", 3, source_timestamp=stamp)
        await line_server.write("good", 7)
        events = await run.wait_events(2)
        assert [e["seq"] for e in events] == [1, 2]
        assert quantities(events) == [3, 4]
        first = events[0]
        assert first["type"] == "production.reported"
        assert first["source"] == "opcua:good"
        assert first["occurred_at"] == format_timestamp(stamp)
        assert first["data"] == {"order": "MO/0001", "qty": 3, "uom": "Units", "workcenter": "WC-1"}
        assert await run.queue.get_state(GOOD_KEY) == "7"
        stats = run.stats()
        assert stats.events_queued == 2
        assert stats.current_order == "MO/0001"
        assert stats.subscribed_nodes == 2
        assert stats.last_value_at is not None


async def test_counter_reset_and_rollover(line_server: OpcuaTestServer, tmp_path: Path) -> None:
    await line_server.reset()
    await line_server.write("order", "MO/0002")
    counter = node("good", "good", "counter", event="production.reported", rollover_max=1000)
    async with running_source(
        line_server, tmp_path, make_config(line_server.endpoint, [counter])
    ) as run:
        await run.wait_settled(3)
        # growth, growth, wrap at 1000 (2 + 1 + 3), reset (1 since), reset to 0, growth
        for value in (990, 998, 3, 1, 0, 4):
            await line_server.write("good", value)
        events = await run.wait_events(5)
        assert quantities(events) == [990, 8, 6, 1, 4]


async def test_source_restart_neither_double_counts_nor_loses(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    await line_server.write("order", "MO/0003")
    config = make_config(line_server.endpoint, [GOOD])
    async with running_source(line_server, tmp_path, config) as run:
        await run.wait_settled(3)
        await line_server.write("good", 5)
        await run.wait_events(1)
    await line_server.write("good", 8)  # made while the agent was down
    async with running_source(line_server, tmp_path, config) as run:
        await run.wait_settled(3)
        assert quantities(await run.events()) == [5, 3]
        await line_server.write("good", 8)  # the same value again
        await line_server.write("good", 10)
        assert quantities(await run.wait_events(3)) == [5, 3, 2]
    async with running_source(line_server, tmp_path, config) as run:
        # A resubscription repeats the current value: a baseline, not production.
        await run.wait_settled(3)
        assert quantities(await run.events()) == [5, 3, 2]
        assert await run.queue.get_state(GOOD_KEY) == "10"


async def test_state_transitions_emit_operation_events(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    await line_server.write("order", "MO/0004")
    states = {"1": "operation.started", "2": "operation.paused", "3": "operation.finished"}
    nodes = [
        node("machine", "state", "state", states=states, operation="Assembly"),
        node(
            "running",
            "running",
            "state",
            states={"true": "operation.started", "false": "operation.paused"},
            workcenter="WC-1",
        ),
    ]
    async with running_source(
        line_server, tmp_path, make_config(line_server.endpoint, nodes)
    ) as run:
        await run.wait_settled(4)
        for value in (1, 1, 2, 0, 2, 3):  # 0 is not mapped: ignored, not a reject
            await line_server.write("state", value)
        await line_server.write("running", True)
        events = await run.wait_events(5)
        assert [(e["type"], e["source"]) for e in events] == [
            ("operation.paused", "opcua:running"),  # the first value seen is reported
            ("operation.started", "opcua:machine"),
            ("operation.paused", "opcua:machine"),
            ("operation.finished", "opcua:machine"),
            ("operation.started", "opcua:running"),
        ]
        assert events[1]["data"] == {"order": "MO/0004", "operation": "Assembly"}
        assert events[4]["data"] == {"order": "MO/0004", "workcenter": "WC-1"}
        assert run.stats().rejected == 0
        assert await run.queue.get_state("opcua:state:machine") == "3"


async def test_samples_report_every_value(line_server: OpcuaTestServer, tmp_path: Path) -> None:
    await line_server.reset()
    sample = node("oven_temp", "temperature", "sample", unit="degC")
    config = make_config(line_server.endpoint, [sample], order=None)
    async with running_source(line_server, tmp_path, config) as run:
        await run.wait_settled(1)
        for value in (21.5, math.nan, 22.0):
            await line_server.write("temperature", value)
        events = await run.wait_events(3)
        assert [e["data"] for e in events] == [
            {"name": "oven_temp", "value": 20.0, "unit": "degC"},
            {"name": "oven_temp", "value": 21.5, "unit": "degC"},
            {"name": "oven_temp", "value": 22.0, "unit": "degC"},
        ]
        assert {e["type"] for e in events} == {"signal.sampled"}
        await wait_until(lambda: run.stats().rejected == 1, "the NaN rejected")
        (reject,) = await run.queue.recent_rejects()
        assert reject.source == "opcua:oven_temp"
        assert reject.where == f"nsu={NAMESPACE};s=Line1.Temperature"
        assert "/data/value" in reject.reason


async def test_order_from_node_changing_mid_run(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    states = {"1": "operation.started"}
    nodes = [GOOD, node("machine", "state", "state", states=states, operation="Assembly")]
    async with running_source(
        line_server, tmp_path, make_config(line_server.endpoint, nodes)
    ) as run:
        await run.wait_settled(4)
        assert run.stats().current_order is None
        held_at = datetime.now(UTC) - timedelta(minutes=5)
        await line_server.write("good", 5, source_timestamp=held_at)  # no order yet: held
        await line_server.write("state", 1)
        await wait_until(lambda: run.stats().held_qty == 5, "5 parts held")
        held = json.loads(await run.queue.get_state("opcua:held:good") or "{}")
        assert held["qty"] == 5
        assert await run.events() == []

        await line_server.write("order", "MO-A")  # released to the first order known
        await line_server.write("good", 8)
        await line_server.write("order", "MO-B")
        await line_server.write("good", 10)
        await line_server.write("order", "")  # cleared: held again
        await line_server.write("good", 12)
        await line_server.write("order", "MO-C")
        events = await run.wait_events(5)
        summary = [(e["type"], e["data"]["order"], e["data"].get("qty")) for e in events]
        assert summary == [
            ("production.reported", "MO-A", 5),
            ("operation.started", "MO-A", None),
            ("production.reported", "MO-A", 3),
            ("production.reported", "MO-B", 2),
            ("production.reported", "MO-C", 2),
        ]
        assert events[0]["occurred_at"] == format_timestamp(held_at)
        assert run.stats().held_qty == 0
        assert run.stats().current_order == "MO-C"
        assert await run.queue.get_state("opcua:held:good") == ""


async def test_bad_counter_values_are_rejected(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    nodes = [
        node("weighed", "temperature", "counter", event="production.reported"),  # a Double
        node("signed", "state", "counter", event="scrap.reported", product="P-1"),  # an Int32
    ]
    config = make_config(line_server.endpoint, nodes, order={"value": "MO/0005"})
    async with running_source(line_server, tmp_path, config) as run:
        await run.wait_settled(2)
        await line_server.write("temperature", 21.5)
        await line_server.write("state", -5)
        await line_server.write("temperature", 25.0)  # integral: grown by 5 since 20.0
        events = await run.wait_events(1)
        await wait_until(lambda: run.stats().rejected == 2, "two rejects")
        assert quantities(events) == [5]
        rejects = {r.source: r for r in await run.queue.recent_rejects()}
        assert (
            rejects["opcua:weighed"].reason == "counter value 21.5 (float) is not an integer >= 0"
        )
        assert rejects["opcua:weighed"].where == f"nsu={NAMESPACE};s=Line1.Temperature"
        assert rejects["opcua:weighed"].payload == b"21.5"
        assert rejects["opcua:signed"].reason == "counter value -5 (int) is not an integer >= 0"
        assert run.stats().last_reject is not None


async def test_buffer_overflow_is_counted_and_recovered(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    nodes = [
        {
            "name": f"tag{i}",
            "namespace_uri": NAMESPACE,
            "identifier": bulk_identifier(i),
            "rule": "counter",
            "event": "production.reported",
        }
        for i in range(BULK_TAGS)
    ]
    config = make_config(
        line_server.endpoint,
        nodes,
        order={"value": "MO/0006"},
        queue_size=100,
        publishing_interval_ms=500,
    )
    final = 10
    async with running_source(line_server, tmp_path, config) as run:
        await run.wait_settled(BULK_TAGS)
        # More changes than the buffer holds arrive in one publish response.
        for value in range(1, final + 1):
            for i in range(BULK_TAGS):
                await line_server.write_bulk(i, value)

        async def all_counted(expected: int) -> bool:
            totals: dict[str, float] = {}
            for e in await run.events():
                totals[e["source"]] = totals.get(e["source"], 0) + e["data"]["qty"]
            return len(totals) == BULK_TAGS and set(totals.values()) == {expected}

        await wait_until_async(lambda: all_counted(final), f"every tag counted {final}")
        await wait_until(lambda: run.stats().resyncs >= 1 and run.stats().connected, "resync")
        # The resubscription repeated every value; one more change each must count exactly one.
        for i in range(BULK_TAGS):
            await line_server.write_bulk(i, final + 1)
        await wait_until_async(lambda: all_counted(final + 1), f"every tag counted {final + 1}")
        stats = run.stats()
        assert stats.overflows > 0
        assert stats.resyncs >= 1
        assert stats.reconnects == 0  # a resubscription is not a lost connection
        assert stats.events_queued < BULK_TAGS * final  # some values were dropped, none counted


async def test_a_full_queue_pauses_the_source_without_losing_production(
    line_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await line_server.reset()
    config = make_config(line_server.endpoint, [GOOD], order={"value": "MO/0007"})
    async with running_source(line_server, tmp_path, config, max_bytes=64 * 1024) as run:
        await run.wait_settled(1)
        filler = NewEvent("signal.sampled", datetime.now(UTC), "test", {"name": "x", "value": 1.0})
        while not run.queue.is_full:
            await run.queue.enqueue([filler] * 50)
        filled = run.queue.stats().last_seq
        assert filled is not None

        await line_server.write("good", 5)
        await line_server.write("good", 9)
        await wait_until(lambda: (run.stats().last_error or "").startswith("queue full"), "paused")
        assert await run.queue.get_state(GOOD_KEY) == "0"  # nothing half-stored

        await run.queue.ack_through(filled)  # the relay took the backlog: room again
        events = await run.wait_events(1, "production.reported")
        await run.wait_settled(3)
        assert sum(quantities(await run.events())) == 9
        assert events[0]["seq"] == filled + 1
