"""The rule engine without a server: batching, held production, persistence and ordering."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.errors import ConfigError
from agent.sources.opcua.config import OpcuaConfig
from agent.sources.opcua.reading import ORDER_TARGET, Reading, in_time_order, state_text
from agent.sources.opcua.rules import RuleEngine, counter_key, held_key
from tests.agent.sources.opcua.test_counter import Observed, observed_counters

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


def config(*nodes: dict[str, Any], order: dict[str, Any] | None = None) -> OpcuaConfig:
    return OpcuaConfig.model_validate(
        {
            "endpoint": "opc.tcp://plc:4840",
            "order": order or {"node": {"namespace_uri": "urn:l", "identifier": "s=Order"}},
            "nodes": list(nodes),
        }
    )


def counter(name: str = "good", **options: Any) -> dict[str, Any]:
    return {
        "name": name,
        "namespace_uri": "urn:l",
        "identifier": f"s={name}",
        "rule": "counter",
        "event": "production.reported",
        **options,
    }


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def value(target: int, raw: Any, seconds: float) -> Reading:
    return Reading((target,), raw, at(seconds))


def order(raw: Any, seconds: float) -> Reading:
    return Reading((ORDER_TARGET,), raw, at(seconds))


def test_a_plan_changes_nothing_until_committed() -> None:
    engine = RuleEngine(config(counter(), order={"value": "MO1"}))
    first = engine.plan([value(0, 10, 0)])
    engine.commit(first)
    plan = engine.plan([value(0, 15, 1)])
    assert [e.data["qty"] for e in plan.events] == [5]
    again = engine.plan([value(0, 15, 1)])  # the first plan was never stored: same outcome
    assert [e.data["qty"] for e in again.events] == [5]
    assert again.state == {counter_key("good", "nsu=urn:l;s=good"): "15"}


def test_held_production_survives_a_restart_and_goes_to_the_next_order() -> None:
    cfg = config(counter())
    engine = RuleEngine(cfg)
    plan = engine.plan([value(0, 100, 0), value(0, 130, 1), value(0, 135, 2)])
    assert plan.events == []
    assert json.loads(plan.state[held_key("good")]) == {
        "qty": 35,
        "at": "2026-01-05T06:00:02.000000Z",
    }

    restarted = RuleEngine(cfg)
    restarted.load(plan.state)
    assert restarted.held_qty == 35
    released = restarted.plan([value(0, 135, 3), order("MO-7", 4), value(0, 136, 5)])
    assert [(e.data["order"], e.data["qty"], e.occurred_at) for e in released.events] == [
        ("MO-7", 35, at(2)),
        ("MO-7", 1, at(5)),
    ]
    assert released.state[held_key("good")] == ""


def test_an_invalid_order_holds_production_and_is_rejected() -> None:
    engine = RuleEngine(config(counter()))
    engine.commit(engine.plan([order("MO1", 0), value(0, 1, 0)]))
    plan = engine.plan([order(42, 1), value(0, 5, 2), order("x" * 300, 3), value(0, 6, 4)])
    assert plan.events == []
    assert plan.rejects[0].reason == "order value of type int is not a string"
    assert plan.rejects[1].where == "nsu=urn:l;s=Order"
    assert plan._memory.held["good"][0] == 5


def test_bad_status_is_a_reject_not_a_value() -> None:
    engine = RuleEngine(config(counter(), order={"value": "MO1"}))
    plan = engine.plan(
        [value(0, 1, 0), Reading((0,), None, at(1), "BadNodeIdUnknown"), value(0, 4, 2)]
    )
    assert [e.data["qty"] for e in plan.events] == [3]
    assert [r.reason for r in plan.rejects] == ["status BadNodeIdUnknown"]


def test_static_fields_that_an_event_cannot_carry_refuse_to_start() -> None:
    state = {
        "name": "machine",
        "namespace_uri": "urn:l",
        "identifier": "s=State",
        "rule": "state",
        "states": {"1": "operation.started"},
        "operation": "Assembly",
        "static": {"lot": "L1"},
    }
    with pytest.raises(ConfigError, match=r"'machine'.*operation\.started"):
        RuleEngine(config(state))


def test_time_order_interleaves_nodes_but_keeps_each_nodes_order() -> None:
    readings = [
        value(0, 1, 10),
        value(0, 2, 5),  # this node's clock stepped back: still after the first
        value(0, 3, 30),
        order("MO1", 7),
        order("MO2", 20),
    ]
    merged = [r.value for r in in_time_order(readings)]
    assert merged == ["MO1", 1, 2, "MO2", 3]


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (2.0, "2"),
        ("RUN", "RUN"),
        (2.5, None),
        (None, None),
    ],
)
def test_state_text(raw: Any, text: str | None) -> None:
    assert state_text(raw) == text


@given(observed_counters(), st.data())
def test_batches_and_failed_stores_never_change_the_total(
    observed: Observed, data: st.DataObject
) -> None:
    options: dict[str, Any] = {"rollover_window": observed.rollover_window}
    if observed.rollover_max is not None:
        options["rollover_max"] = observed.rollover_max
    cfg = config(counter(**options), order={"value": "MO1"})
    engine = RuleEngine(cfg)
    persisted: dict[str, str] = {}
    readings = [value(0, v, i) for i, v in enumerate(observed.readings)]
    counted = 0
    while readings:
        size = data.draw(st.integers(1, len(readings)))
        batch, readings = readings[:size], readings[size:]
        plan = engine.plan(batch)
        if data.draw(st.booleans()):  # the store failed: plan the same readings again
            plan = engine.plan(batch)
        if data.draw(st.integers(0, 9)) == 0:  # the agent restarted from what was persisted
            engine = RuleEngine(cfg)
            engine.load(persisted)
            plan = engine.plan(batch)
        engine.commit(plan)
        persisted.update(plan.state)
        counted += sum(int(e.data["qty"]) for e in plan.events)
    assert counted == observed.produced
