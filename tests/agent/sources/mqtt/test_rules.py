"""Subscription rules as pure functions: message in, event or reasoned reject out."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.errors import RejectedError
from agent.queue.model import NewEvent
from agent.sources.mqtt.config import MqttSubscription
from agent.sources.mqtt.rules import RuleBook

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def sub(topic: str = "plant/+/produced", **kw: Any) -> MqttSubscription:
    values: dict[str, Any] = {
        "topic": topic,
        "event": "production.reported",
        "fields": {"order": "/order", "qty": "/qty"},
    }
    values.update(kw)
    return MqttSubscription(**values)


def apply(book: RuleBook, topic: str, payload: Any) -> NewEvent:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return book.apply(topic, raw, NOW)


def reason(book: RuleBook, topic: str, payload: Any) -> str:
    with pytest.raises(RejectedError) as info:
        apply(book, topic, payload)
    return str(info.value)


def test_fields_static_and_topic_levels_make_the_data() -> None:
    book = RuleBook([sub(static={"uom": "Units"}, topic_fields={"workcenter": 1})])
    event = apply(book, "plant/m3/produced", {"order": " WH/MO/1 ", "qty": 3, "extra": True})
    assert event.type == "production.reported"
    assert event.data == {"order": "WH/MO/1", "qty": 3.0, "uom": "Units", "workcenter": "m3"}
    assert event.source == "mqtt:plant/m3/produced"
    assert event.occurred_at == NOW
    assert event.dedupe_key is None


def test_pointers_reach_into_nested_objects_and_arrays() -> None:
    book = RuleBook([sub(fields={"order": "/mo/name", "qty": "/counts/1"})])
    event = apply(book, "plant/a/produced", {"mo": {"name": "WH/MO/2"}, "counts": [0, 7]})
    assert event.data == {"order": "WH/MO/2", "qty": 7.0}


def test_the_last_topic_level_can_be_counted_from_the_end() -> None:
    book = RuleBook(
        [
            sub(
                "sensors/#",
                event="signal.sampled",
                fields={"value": "/v"},
                topic_fields={"name": -1},
            )
        ]
    )
    event = apply(book, "sensors/hall/2/temperature", {"v": 20.5})
    assert event.data == {"name": "temperature", "value": 20.5}


def test_without_pointers_the_payload_need_not_be_json() -> None:
    book = RuleBook(
        [
            MqttSubscription(
                topic="mo/+/done",
                event="order.completed",
                static={"backorder": False},
                topic_fields={"order": 1},
            )
        ]
    )
    event = book.apply("mo/WH-MO-9/done", b"\x00 not json", NOW)
    assert event.data == {"order": "WH-MO-9", "backorder": False}


def test_the_first_matching_subscription_in_order_wins() -> None:
    specific = sub("plant/line1/produced", static={"uom": "kg"})
    general = sub("plant/#", static={"uom": "Units"})
    book = RuleBook([specific, general])
    assert apply(book, "plant/line1/produced", {"order": "A", "qty": 1}).data["uom"] == "kg"
    assert apply(book, "plant/line2/produced", {"order": "A", "qty": 1}).data["uom"] == "Units"
    assert apply(book, "plant/x/y/z", {"order": "A", "qty": 1}).data["uom"] == "Units"
    rule = book.rule_for("plant")  # '#' also matches the parent level
    assert rule is not None and rule.topic_filter == "plant/#"
    assert book.rule_for("other/line1/produced") is None
    assert reason(book, "other/t", {}) == "topic other/t: matches no configured subscription"


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01t10:00:00.5z", "2024-05-01T10:00:00.500000+00:00"),
        ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+00:00"),
        ("2024-05-01 04:30:00-05:30", "2024-05-01T10:00:00+00:00"),
    ],
)
def test_occurred_at_is_read_from_the_payload_and_kept_in_utc(stamp: str, expected: str) -> None:
    book = RuleBook([sub(occurred_at="/ts")])
    event = apply(book, "plant/a/produced", {"order": "A", "qty": 1, "ts": stamp})
    assert event.occurred_at.isoformat() == expected
    assert event.occurred_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("stamp", "why"),
    [
        ("2024-05-01T10:00:00", "is not an RFC 3339 timestamp with a UTC offset"),
        ("2024-05-01", "is not an RFC 3339 timestamp with a UTC offset"),
        (1714557600, "1714557600 is not an RFC 3339 timestamp"),
        ("2024-13-01T10:00:00Z", "month must be in 1..12"),
    ],
)
def test_a_timestamp_without_offset_or_valid_date_is_rejected(stamp: Any, why: str) -> None:
    book = RuleBook([sub(occurred_at="/ts")])
    text = reason(book, "plant/a/produced", {"order": "A", "qty": 1, "ts": stamp})
    assert text.startswith("topic plant/a/produced: occurred_at: /ts: ")
    assert why in text


def test_a_missing_timestamp_is_rejected_not_replaced() -> None:
    book = RuleBook([sub(occurred_at="/ts")])
    assert (
        reason(book, "plant/a/produced", {"order": "A", "qty": 1})
        == "topic plant/a/produced: occurred_at: pointer /ts not in payload"
    )


@pytest.mark.parametrize(("value", "key"), [("m-1", "m-1"), (42, "42"), (1.5, "1.5")])
def test_the_dedupe_key_names_the_filter_and_the_value(value: Any, key: str) -> None:
    book = RuleBook([sub(dedupe_key="/id")])
    event = apply(book, "plant/a/produced", {"order": "A", "qty": 1, "id": value})
    assert event.dedupe_key == f"mqtt:plant/+/produced:{key}"


@pytest.mark.parametrize("value", [True, None, "", {"a": 1}, [1]])
def test_a_dedupe_value_that_is_not_a_scalar_id_is_rejected(value: Any) -> None:
    book = RuleBook([sub(dedupe_key="/id")])
    text = reason(book, "plant/a/produced", {"order": "A", "qty": 1, "id": value})
    assert "dedupe_key: /id: " in text
    assert "is not a non-empty string or number" in text


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (
            b"{",
            "payload is not JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
        (b"\xff\xfe\xfa", "payload is not JSON: "),
        ({"order": "A"}, "/qty: field required (pointer /qty not in payload)"),
        ({"order": "A", "qty": 0}, "/qty: input should be greater than 0"),
        ({"order": "A", "qty": "many"}, "/qty: input should be a valid number"),
        ({"order": "  ", "qty": 1}, "/order: string should have at least 1 character"),
        ({"order": "A", "qty": math.inf}, "/qty: input should be a finite number"),
        ([1, 2], "/order: field required (pointer /order not in payload)"),
    ],
)
def test_reject_reasons_name_what_and_where(payload: Any, expected: str) -> None:
    book = RuleBook([sub()])
    text = reason(book, "plant/line1/produced", payload)
    assert text.startswith(f"topic plant/line1/produced: {expected}")


def test_a_rule_wide_failure_lists_every_missing_pointer() -> None:
    book = RuleBook(
        [
            MqttSubscription(
                topic="ops/+",
                event="operation.started",
                fields={"order": "/mo", "operation": "/op", "workcenter": "/wc"},
            )
        ]
    )
    text = reason(book, "ops/a", {"mo": "WH/MO/1"})
    assert text == (
        "topic ops/a: data: value error, either 'operation' or 'workcenter' is required "
        "(pointers /op, /wc not in payload)"
    )


def test_a_missing_topic_level_is_rejected() -> None:
    book = RuleBook([sub("plant/#", topic_fields={"workcenter": 3})])
    assert (
        reason(book, "plant/a", {"order": "A", "qty": 1})
        == "topic plant/a: /workcenter: topic has no level 3"
    )


def test_a_topic_too_long_for_the_event_source_is_rejected() -> None:
    book = RuleBook([sub("plant/#")])
    topic = "plant/" + "x" * 600
    assert "topic is longer than 507 characters" in reason(book, topic, {"order": "A", "qty": 1})


def test_a_data_field_may_come_from_one_place_only() -> None:
    with pytest.raises(ValidationError, match="'qty' is set in both 'fields' and 'static'"):
        sub(static={"qty": 1})


json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
json_any = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=10,
)


@given(payload=st.binary(max_size=64))
def test_any_bytes_give_an_event_or_a_reject(payload: bytes) -> None:
    book = RuleBook([sub(occurred_at="/ts", dedupe_key="/id")])
    try:
        book.apply("plant/a/produced", payload, NOW)
    except RejectedError as exc:
        assert str(exc).startswith("topic plant/a/produced: ")


@given(order=json_any, qty=json_any, ts=json_any, ident=json_any)
def test_any_json_values_give_an_event_or_a_reject(
    order: Any, qty: Any, ts: Any, ident: Any
) -> None:
    book = RuleBook([sub(occurred_at="/ts", dedupe_key="/id")])
    payload = json.dumps({"order": order, "qty": qty, "ts": ts, "id": ident}).encode()
    try:
        book.apply("plant/a/produced", payload, NOW)
    except RejectedError as exc:
        assert str(exc).startswith("topic plant/a/produced: ")


@given(
    order=st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=40),
    pad=st.sampled_from(["", " ", "  \t"]),
    qty=st.floats(min_value=1e-9, max_value=1e12, allow_nan=False, allow_infinity=False),
)
def test_valid_reports_map_to_exactly_their_values(order: str, pad: str, qty: float) -> None:
    book = RuleBook([sub()])
    event = apply(book, "plant/a/produced", {"order": pad + order + pad, "qty": qty})
    assert event.data == {"order": order, "qty": qty}
