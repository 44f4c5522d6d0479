"""Sparkplug B births, sequences and metric rules, without a broker."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.sources.sparkplug import sparkplug_b_pb2 as pb
from agent.sources.sparkplug.config import SparkplugConfig
from agent.sources.sparkplug.nodes import NodeBook, Value
from agent.sources.sparkplug.payload import metric_value, parse_topic
from agent.sources.sparkplug.rules import MetricRules

NOW = datetime(2026, 12, 1, tzinfo=UTC)
UINT32, INT32, STRING = 7, 3, 12


def rules(order: dict[str, Any] | None = None, **counter: Any) -> MetricRules:
    return MetricRules(
        SparkplugConfig.model_validate(
            {
                "group_id": "g",
                "order": order or {"value": "MO/1"},
                "metrics": [
                    {
                        "name": "good",
                        "node": "n",
                        "metric": "Good",
                        "rule": "counter",
                        "event": "production.reported",
                        **counter,
                    }
                ],
            }
        )
    )


def good(value: int, stamp: int, *, historical: bool = False) -> Value:
    return Value(None, "Good", UINT32, value, stamp, historical)


def quantities(engine: MetricRules, values: list[Value]) -> list[int]:
    plan = engine.plan("n", values, NOW)
    engine.commit(plan)
    return [e.data["qty"] for e in plan.events]


def test_values_of_one_message_are_taken_in_timestamp_order() -> None:
    engine = rules()
    assert quantities(engine, [good(0, 1)]) == []  # the first value ever is a baseline
    # Forwarded out of order: taken as 10, 20, 30 rather than a "reset" to 10 in the middle.
    assert quantities(engine, [good(30, 4), good(10, 2), good(20, 3)]) == [10, 10, 10]


def test_a_value_older_than_one_taken_is_skipped_never_counted_twice() -> None:
    engine = rules()
    quantities(engine, [good(0, 1), good(50, 10)])
    plan = engine.plan("n", [good(40, 5, historical=True)], NOW)
    assert (plan.events, plan.stale) == ([], 1)
    assert quantities(engine, [good(55, 11)]) == [5]


def test_a_uint32_counter_wraps_at_its_type() -> None:
    engine = rules()
    quantities(engine, [good(2**32 - 3, 1)])
    assert quantities(engine, [good(4, 2)]) == [2 + 1 + 4]


def test_production_waits_for_the_order_metric() -> None:
    engine = rules(order={"node": "n", "metric": "Order"})
    assert quantities(engine, [good(0, 1), good(7, 2)]) == []
    order = Value(None, "Order", STRING, "MO/9", 3, False)
    plan = engine.plan("n", [order], NOW)
    engine.commit(plan)
    assert [(e.data["order"], e.data["qty"]) for e in plan.events] == [("MO/9", 7)]
    assert plan.state["sparkplug:held:good"] == ""


def test_the_order_in_a_birth_applies_before_its_counters() -> None:
    engine = rules(order={"node": "n", "metric": "Order"})
    quantities(engine, [good(0, 1)])
    order = Value(None, "Order", STRING, "MO/3", 2, False)
    plan = engine.plan("n", [good(4, 2), order], NOW)
    assert [(e.data["order"], e.data["qty"]) for e in plan.events] == [("MO/3", 4)]


def test_signed_integers_travel_as_twos_complement() -> None:
    metric = pb.Payload.Metric(int_value=2**32 - 5)
    assert metric_value(metric, INT32) == -5
    assert metric_value(metric, UINT32) == 2**32 - 5


def _payload(seq: int | None, *metrics: tuple[str, int, int, int]) -> Any:
    payload = pb.Payload(timestamp=1)
    if seq is not None:
        payload.seq = seq
    for name, alias, datatype, value in metrics:
        m = payload.metrics.add()
        if name:
            m.name = name
        m.alias, m.datatype, m.long_value = alias, datatype, value
    return payload


def test_births_deaths_and_the_problems_that_ask_for_a_rebirth() -> None:
    book = NodeBook()
    topic = parse_topic

    def apply(text: str, payload: Any) -> Any:
        parsed = topic(text)
        assert parsed is not None
        return book.apply(parsed, payload)

    born = apply("spBv1.0/g/NBIRTH/n", _payload(0, ("bdSeq", 0, 8, 3), ("Good", 1, 8, 5)))
    assert born.rebirth is None and [v.value for v in born.values] == [5]
    assert [v.metric for v in apply("spBv1.0/g/NDATA/n", _payload(1, ("", 1, 0, 6))).values] == [
        "Good"
    ]
    early = apply("spBv1.0/g/DDATA/n/plc", _payload(2, ("", 9, 0, 1)))
    assert early.rebirth == "DDATA of plc before DBIRTH"
    assert apply("spBv1.0/g/DBIRTH/n/plc", _payload(3, ("Temp", 9, 8, 20))).rebirth is None
    assert apply("spBv1.0/g/DDEATH/n/plc", _payload(4)).rebirth is None
    assert book.offline() == ["n/plc"]
    stale = apply("spBv1.0/g/NDEATH/n", _payload(None, ("bdSeq", 0, 8, 2)))
    assert stale.rebirth == "NDEATH bdSeq 2 does not match NBIRTH bdSeq 3"
    assert book.online() == 1
    apply("spBv1.0/g/NDEATH/n", _payload(None, ("bdSeq", 0, 8, 3)))
    assert book.offline() == ["n", "n/plc"]
    late = apply("spBv1.0/g/NDATA/n", _payload(5, ("", 1, 0, 7)))
    assert late.rebirth == "NDATA before NBIRTH" and late.values == []
    assert topic("spBv1.0/STATE/host") is None
