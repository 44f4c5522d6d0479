"""Event types and the envelope: what is accepted, how it is normalised, where errors point."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from wire.errors import WireValidationError
from wire.events import (
    DATA_MODELS,
    STOCK_MOVING_TYPES,
    TELEMETRY_TYPES,
    format_timestamp,
    parse_event,
    validate_data,
)

EventFactory = Callable[..., dict[str, Any]]


def test_every_type_is_either_telemetry_or_stock_moving(
    valid_data: dict[str, dict[str, Any]],
) -> None:
    assert set(DATA_MODELS) == TELEMETRY_TYPES | STOCK_MOVING_TYPES
    assert not TELEMETRY_TYPES & STOCK_MOVING_TYPES
    assert set(valid_data) == set(DATA_MODELS)


@pytest.mark.parametrize("event_type", sorted(DATA_MODELS))
def test_valid_data_of_every_type_is_accepted_unchanged(
    event_type: str, valid_data: dict[str, dict[str, Any]]
) -> None:
    assert validate_data(event_type, valid_data[event_type]) == valid_data[event_type]


@pytest.mark.parametrize("event_type", sorted(DATA_MODELS))
def test_valid_event_of_every_type_parses(event_type: str, make_event: EventFactory) -> None:
    raw = make_event(type=event_type)
    assert parse_event(raw).to_wire() == raw


INVALID_DATA: list[tuple[str, dict[str, Any], str, str]] = [
    ("production.reported", {"qty": 1.0}, "/data/order", "required"),
    ("production.reported", {"order": "MO", "qty": 0}, "/data/qty", "greater than 0"),
    ("production.reported", {"order": "MO", "qty": True}, "/data/qty", "not a boolean"),
    ("production.reported", {"order": "MO", "qty": "many"}, "/data/qty", "number"),
    ("production.reported", {"order": "MO", "qty": 1, "colour": "red"}, "/data/colour", "Extra"),
    ("production.reported", {"order": "MO", "qty": float("inf")}, "/data/qty", "finite"),
    ("material.consumed", {"order": "MO", "qty": 1}, "/data/product", "required"),
    ("material.consumed", {"order": "MO", "product": "P", "qty": -2}, "/data/qty", "greater"),
    ("material.consumed", {"order": "MO", "product": "P", "qty": 1, "uom": ""}, "/data/uom", "1"),
    ("scrap.reported", {"product": "   ", "qty": 1}, "/data/product", "at least 1"),
    ("scrap.reported", {"product": "P", "qty": 1, "reason": "x" * 1025}, "/data/reason", "1024"),
    ("scrap.reported", {"product": "P" * 257, "qty": 1}, "/data/product", "256"),
    ("operation.started", {"order": "MO"}, "/data", "operation' or 'workcenter"),
    ("operation.paused", {"operation": "Cut"}, "/data/order", "required"),
    ("operation.finished", {"order": "MO", "operation": 7}, "/data/operation", "string"),
    ("order.completed", {"order": "MO"}, "/data/backorder", "required"),
    ("order.completed", {"order": "MO", "backorder": "perhaps"}, "/data/backorder", "boolean"),
    ("inventory.counted", {"product": "P", "location": "L", "qty": -0.5}, "/data/qty", "greater"),
    ("inventory.counted", {"product": "P", "qty": 1}, "/data/location", "required"),
    ("inventory.counted", {"product": "P", "location": "L", "qty": False}, "/data/qty", "boolean"),
    (
        "stock.transferred",
        {"product": "P", "qty": 1, "to_location": "Q"},
        "/data/from_location",
        "required",
    ),
    ("stock.received", {"product": "P", "qty": 0, "location": "L"}, "/data/qty", "greater"),
    ("stock.received", {"product": "P", "qty": 1}, "/data/location", "required"),
    ("signal.sampled", {"name": "t", "value": float("nan")}, "/data/value", "finite"),
    ("signal.sampled", {"name": "t", "value": [1, 2]}, "/data/value", "valid number"),
    ("signal.sampled", {"name": "t", "value": "x" * 1025}, "/data/value", "1024"),
    ("signal.sampled", {"value": 1.0}, "/data/name", "required"),
    ("signal.sampled", {"name": "t", "value": 1, "unit": "\ud800"}, "/data/unit", "unicode"),
]


@pytest.mark.parametrize(("event_type", "data", "location", "message"), INVALID_DATA)
def test_invalid_data_names_the_field(
    event_type: str, data: dict[str, Any], location: str, message: str
) -> None:
    with pytest.raises(WireValidationError) as caught:
        validate_data(event_type, data)
    assert caught.value.location == location
    assert message in caught.value.message


def test_every_type_has_an_invalid_example() -> None:
    assert {case[0] for case in INVALID_DATA} == set(DATA_MODELS)


def test_unknown_type_points_at_type() -> None:
    with pytest.raises(WireValidationError) as caught:
        validate_data("coffee.brewed", {})
    assert caught.value.location == "/type"


def test_data_is_normalised() -> None:
    data = {"order": "  WH/MO/1 ", "qty": 3, "lot": None}
    assert validate_data("production.reported", data) == {"order": "WH/MO/1", "qty": 3.0}


INVALID_ENVELOPES: list[tuple[dict[str, Any], str]] = [
    ({"id": "9b2f9a4e-8d4b-4f3a-9c59-3a2f1c1d7e01"}, "/id"),  # version 4
    ({"id": "017F22E2-79B0-7CC3-98C4-DC0C0C07398F"}, "/id"),  # upper case
    ({"id": "not-a-uuid"}, "/id"),
    ({"gateway_id": "-leading-dash"}, "/gateway_id"),
    ({"gateway_id": "gw-1\n"}, "/gateway_id"),
    ({"gateway_id": "g" * 65}, "/gateway_id"),
    ({"seq": 0}, "/seq"),
    ({"seq": "5"}, "/seq"),
    ({"seq": True}, "/seq"),
    ({"seq": 5.0}, "/seq"),
    ({"type": "coffee.brewed"}, "/type"),
    ({"occurred_at": "2026-01-01T00:00:00"}, "/occurred_at"),  # no offset
    ({"occurred_at": "2026-01-01"}, "/occurred_at"),
    ({"occurred_at": "1767225600"}, "/occurred_at"),
    ({"occurred_at": 1767225600}, "/occurred_at"),
    ({"occurred_at": "2026-13-01T00:00:00Z"}, "/occurred_at"),
    ({"source": ""}, "/source"),
    ({"source": "s" * 513}, "/source"),
    ({"source": "bad \udc80"}, "/source"),
    ({"data": []}, "/data"),
    ({"colour": "red"}, "/colour"),
]


@pytest.mark.parametrize(("overrides", "location"), INVALID_ENVELOPES)
def test_invalid_envelope_names_the_field(
    overrides: dict[str, Any], location: str, make_event: EventFactory
) -> None:
    with pytest.raises(WireValidationError) as caught:
        parse_event(make_event(**overrides), "/events/4")
    assert caught.value.location == "/events/4" + location


@pytest.mark.parametrize("missing", ["id", "gateway_id", "seq", "type", "occurred_at", "data"])
def test_missing_envelope_field_is_named(missing: str, make_event: EventFactory) -> None:
    raw = make_event()
    del raw[missing]
    with pytest.raises(WireValidationError) as caught:
        parse_event(raw)
    assert caught.value.location == f"/{missing}"


def test_invalid_data_inside_event_has_full_path(make_event: EventFactory) -> None:
    raw = make_event(data={"order": "MO", "qty": -1})
    with pytest.raises(WireValidationError) as caught:
        parse_event(raw, "/events/0")
    assert caught.value.location == "/events/0/data/qty"
    assert str(caught.value).startswith("/events/0/data/qty: ")


def test_occurred_at_is_converted_to_utc(make_event: EventFactory) -> None:
    event = parse_event(make_event(occurred_at="2026-01-01T01:30:00.5+01:00"))
    assert event.to_wire()["occurred_at"] == "2026-01-01T00:30:00.500000Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), "2026-01-01T00:00:00.000000Z"),
        (datetime(999, 5, 1, 10, 0, 0, 7, tzinfo=UTC), "0999-05-01T10:00:00.000007Z"),
        (
            datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2))),
            "2026-01-01T00:00:00.000000Z",
        ),
    ],
)
def test_format_timestamp(value: datetime, expected: str) -> None:
    assert format_timestamp(value) == expected
