"""The relay's fast path accepts exactly what full validation accepts, with the same result."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.wire.test_properties import events
from wire.encoding import canonical_json
from wire.errors import WireValidationError
from wire.events import parse_event, parse_events_fast

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def slow(raw: Any) -> Any:
    try:
        return parse_event(raw)
    except WireValidationError:
        return None


@given(events())
@settings(max_examples=300)
def test_valid_events_take_the_fast_path_unchanged(raw: dict[str, Any]) -> None:
    decoded = json.loads(canonical_json(raw))
    fast = parse_events_fast([decoded])
    assert fast is not None
    assert fast == [parse_event(decoded)]
    assert fast[0].encode() == canonical_json(raw)


@given(
    events(),
    st.sampled_from(["id", "gateway_id", "seq", "occurred_at", "source", "type", "data"]),
    json_values,
)
@settings(max_examples=400)
def test_a_mutated_event_is_never_accepted_by_the_fast_path_alone(
    raw: dict[str, Any], key: str, value: Any
) -> None:
    mutated = {**raw, key: value}
    fast = parse_events_fast([mutated])
    if fast is not None:
        assert fast == [slow(mutated)]


@given(events(), st.text(max_size=10), json_values)
@settings(max_examples=400)
def test_mutated_data_is_never_accepted_by_the_fast_path_alone(
    raw: dict[str, Any], key: str, value: Any
) -> None:
    mutated = {**raw, "data": {**raw["data"], key: value}}
    fast = parse_events_fast([mutated])
    if fast is not None:
        assert fast == [slow(mutated)]


def test_padded_names_fall_back_to_full_validation_which_strips_them() -> None:
    raw = {
        "id": "01890a5d-ac96-774b-bcce-b302099a8057",
        "gateway_id": "gw-1",
        "seq": 1,
        "type": "production.reported",
        "occurred_at": "2026-01-01T00:00:00Z",
        "source": "s",
        "data": {"order": " MO/1 ", "qty": 1},
    }
    assert parse_events_fast([raw]) is None
    assert parse_event(raw).data == {"order": "MO/1", "qty": 1.0}
