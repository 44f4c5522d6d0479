"""Configurations that used to pass ``check-config`` and then lose production without a word."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.health.status import assess
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.opcua.config import OpcuaConfig, OpcuaNodeRule
from runtime.backoff import Backoff
from tests.agent.sources.opcua.harness import (
    GATEWAY,
    make_config,
    node,
    quantities,
    running_source,
    wait_until,
)
from tests.fixtures.opcua_server import NAMESPACE, VARIABLES, OpcuaTestServer

UINT32_MAX = 2**32 - 1


async def test_a_uint32_counter_wraps_at_its_type_without_rollover_max(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    """Taken as a reset, the wrap would lose ``max - last + 1`` parts."""
    await opcua_server.write("order", "MO/0700")
    await opcua_server.write("good", UINT32_MAX - 5)
    counter = node("good", "good", "counter", event="production.reported")
    async with running_source(
        opcua_server, tmp_path, make_config(opcua_server.endpoint, [counter])
    ) as run:
        await run.wait_settled(3)
        await opcua_server.write("good", UINT32_MAX - 1)  # +4
        await opcua_server.write("good", 5)  # wrap: +1 to the max, +1 to 0, +5
        events = await run.wait_events(2)
        assert quantities(events) == [4, 7]


async def test_a_configured_rollover_max_wins_over_the_type(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await opcua_server.write("order", "MO/0701")
    await opcua_server.write("good", 995)
    counter = node("good", "good", "counter", event="production.reported", rollover_max=999)
    async with running_source(
        opcua_server, tmp_path, make_config(opcua_server.endpoint, [counter])
    ) as run:
        await run.wait_settled(3)
        await opcua_server.write("good", 2)  # 996..999, 0, 1, 2
        assert quantities(await run.wait_events(1)) == [7]


@pytest.mark.parametrize("model", [OpcuaNodeRule, OpcuaConfig])
def test_an_identifier_with_a_namespace_index_is_refused_with_the_right_form(
    model: type[OpcuaNodeRule | OpcuaConfig],
) -> None:
    rule = {
        "name": "good",
        "namespace_uri": NAMESPACE,
        "identifier": "ns=2;s=GoodParts",
        "rule": "sample",
    }
    data = rule if model is OpcuaNodeRule else {"nodes": [rule]}
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    text = str(caught.value)
    assert "namespace index (ns=2)" in text
    assert 'identifier = "s=GoodParts"' in text
    assert "namespace_uri" in text


def test_an_nsu_identifier_sets_the_namespace_uri() -> None:
    rule = OpcuaNodeRule.model_validate(
        {"name": "good", "identifier": f"nsu={NAMESPACE};s=Line1.GoodParts", "rule": "sample"}
    )
    assert (rule.namespace_uri, rule.identifier) == (NAMESPACE, "s=Line1.GoodParts")
    with pytest.raises(ValidationError, match="but namespace_uri is"):
        OpcuaNodeRule.model_validate(
            {
                "name": "good",
                "namespace_uri": "urn:other",
                "identifier": f"nsu={NAMESPACE};s=Line1.GoodParts",
                "rule": "sample",
            }
        )


async def test_a_node_unknown_after_a_restart_is_an_alarm_and_others_go_on(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await opcua_server.write("order", "MO/0702")
    nodes = [
        node("good", "good", "counter", event="production.reported"),
        node("scrap", "scrap", "counter", event="scrap.reported", product="WIDGET"),
    ]
    async with running_source(
        opcua_server, tmp_path, make_config(opcua_server.endpoint, nodes)
    ) as run:
        await run.wait_connected()
        await run.wait_settled(4)
        assert run.stats().alarm is None

        await opcua_server.stop()
        await wait_until(lambda: not run.stats().connected, "the loss is noticed")
        await opcua_server.start(without=("good",))
        await run.wait_connected(sessions=2)
        await wait_until(lambda: run.stats().alarm is not None, "the unknown node is an alarm")
        alarm = run.stats().alarm
        assert alarm is not None
        assert "BadNodeIdUnknown" in alarm and VARIABLES["good"][0] in alarm
        health = assess({"opcua": run.stats()})
        assert health.status == "red"
        assert any("BadNodeIdUnknown" in reason for reason in health.reasons)

        await opcua_server.write("scrap", 3)
        assert quantities(await run.wait_events(1), "scrap.reported") == [3]

        await opcua_server.stop()
        await wait_until(lambda: not run.stats().connected, "the loss is noticed")
        await opcua_server.start()  # the tag is back: the alarm clears
        await run.wait_connected(sessions=3)
        await wait_until(lambda: run.stats().alarm is None, "the alarm clears")


async def test_state_keys_that_cannot_match_a_boolean_are_an_alarm_and_values_counted(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await opcua_server.write("order", "MO/0703")
    rule = node(
        "running",
        "running",
        "state",
        states={"1": "operation.started", "0": "operation.paused"},
        operation="Assembly",
    )
    async with running_source(
        opcua_server, tmp_path, make_config(opcua_server.endpoint, [rule])
    ) as run:
        await run.wait_connected()
        await wait_until(lambda: run.stats().alarm is not None, "the state keys are an alarm")
        alarm = run.stats().alarm
        assert alarm is not None
        assert "'1', '0' can never match" in alarm and "Boolean" in alarm
        await run.wait_settled(2)
        await opcua_server.write("running", True)
        await wait_until(lambda: run.stats().unmatched >= 2, "unmatched values are counted")
        last = run.stats().last_unmatched
        assert last is not None and "'true'" in last
        assert assess({"opcua": run.stats()}).status == "red"


async def test_state_keys_that_match_the_type_raise_no_alarm(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await opcua_server.write("order", "MO/0704")
    rule = node(
        "running", "running", "state", states={"true": "operation.started"}, operation="Assembly"
    )
    async with running_source(
        opcua_server, tmp_path, make_config(opcua_server.endpoint, [rule])
    ) as run:
        await run.wait_settled(2)  # the types are read before the subscription answers
        assert run.stats().alarm is None
        await opcua_server.write("running", True)
        events = await run.wait_events(1)
        assert [e["type"] for e in events] == ["operation.started"]


async def test_a_rule_pointed_at_another_node_starts_from_a_baseline(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    """Keyed by name only, the old node's 10 made the new node's 3 a reset counting 3."""
    await opcua_server.write("order", "MO/0705")
    await opcua_server.write("good", 10)
    await opcua_server.write("scrap", 3)
    before = node("parts", "good", "counter", event="production.reported")
    config = make_config(opcua_server.endpoint, [before])
    async with running_source(opcua_server, tmp_path, config) as run:
        await run.wait_settled(2)
        await opcua_server.write("good", 12)
        assert quantities(await run.wait_events(1)) == [2]

    after = node("parts", "scrap", "counter", event="production.reported")
    config = make_config(opcua_server.endpoint, [after])
    async with running_source(opcua_server, tmp_path, config) as run:
        await run.wait_settled(2)
        await opcua_server.write("scrap", 5)
        events = await run.wait_events(2)
        assert quantities(events) == [2, 2]


async def test_a_counter_value_saved_under_the_rule_name_alone_is_migrated(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await opcua_server.write("order", "MO/0706")
    await opcua_server.write("good", 9)
    counter = node("good", "good", "counter", event="production.reported")
    config = make_config(opcua_server.endpoint, [counter])
    queue = await QueueStore.open(tmp_path / "queue.db", GATEWAY, QueueConfig())
    try:  # what an agent that keyed counters by rule name alone left behind
        await queue.enqueue([], {"opcua:counter:good": "7"})
    finally:
        await queue.close()
    async with running_source(opcua_server, tmp_path, config) as run:
        events = await run.wait_events(1)
        assert quantities(events) == [2]  # 7 -> 9 while the agent was being upgraded
        assert await run.queue.get_state("opcua:counter:good") in (None, "")
        key = f"opcua:counter:good:nsu={NAMESPACE};{VARIABLES['good'][0]}"
        assert await run.queue.get_state(key) == "9"


def test_reconnect_delays_stay_short_through_a_plc_restart() -> None:
    """A PLC that restarts (counters reset to zero) is read again within the cap.

    With delays doubling to 30 s, a 20 s restart could leave the agent away for 30 s more,
    long enough for a fast line to climb back past the last value read and lose that much.
    """
    config = OpcuaConfig()
    assert config.reconnect_max_seconds <= 5.0
    backoff = Backoff(config.reconnect_min_seconds, config.reconnect_max_seconds, random.Random(1))
    waited, delays = 0.0, []
    while waited < 120.0:  # outages from a quick reboot to two minutes
        delays.append(backoff.next_delay())
        waited += delays[-1]
    assert max(delays) <= config.reconnect_max_seconds
    assert sum(delays[:4]) < 8.0  # the first four tries inside the first seconds
