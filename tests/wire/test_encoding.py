"""Canonical JSON: one byte form per value, so equal events are equal bytes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from wire.encoding import canonical_json
from wire.events import parse_event

EventFactory = Callable[..., dict[str, Any]]


def test_keys_are_sorted_at_every_level_without_white_space() -> None:
    value = {"b": 1, "a": {"z": [3, {"y": None, "x": True}], "c": "d"}}
    assert canonical_json(value) == b'{"a":{"c":"d","z":[3,{"x":true,"y":null}]},"b":1}'


def test_insertion_order_does_not_matter() -> None:
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})


def test_text_is_utf8_not_escaped() -> None:
    assert canonical_json({"w": "Presse Süd ✓"}) == '{"w":"Presse Süd ✓"}'.encode()


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(number: float) -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        canonical_json({"qty": number})


@pytest.mark.parametrize(
    "value", [{"qty": 0.1}, {"qty": 1e-300}, {"n": 2**63}, {"s": 'a"b\\c\n'}, [], {}]
)
def test_round_trip_through_json(value: Any) -> None:
    assert json.loads(canonical_json(value)) == value


def test_event_encoding_is_canonical(make_event: EventFactory) -> None:
    raw = make_event()
    reordered = dict(reversed(list(raw.items())))
    assert parse_event(reordered).encode() == canonical_json(raw)
    assert parse_event(json.loads(canonical_json(raw))).encode() == canonical_json(raw)
