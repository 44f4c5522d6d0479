"""The relay's fast path accepts exactly what full validation accepts, with the same result."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from tests.wire.conftest import EventFactory
from tests.wire.test_properties import events
from wire.batch import Batch, _parse_canonical, _parse_checked, encode_batch, parse_batch
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


# --- Whole batches: the canonical path of parse_batch ----------------------------------------


def batch_body(raw: list[dict[str, Any]], first_seq: int = 1) -> bytes:
    return encode_batch(
        "gw-1", first_seq, first_seq + len(raw) - 1, [canonical_json(e) for e in raw]
    )


def checked(body: bytes) -> Batch | WireValidationError:
    try:
        return _parse_checked(body)
    except WireValidationError as exc:
        return exc


def assert_agrees_with_full_parse(body: bytes) -> None:
    """The canonical path either declines or gives what the full parse gives, and its kept
    bytes are each event's encode()."""
    fast = _parse_canonical(body)
    if fast is None:
        return
    full = checked(body)
    assert isinstance(full, Batch)
    assert fast == full
    assert fast.bodies == tuple(e.encode() for e in full.events)


@given(st.integers(min_value=1, max_value=2**40), st.lists(st.data(), min_size=1, max_size=4))
@settings(max_examples=150)
def test_canonical_batches_take_the_canonical_path(first_seq: int, draws: list[Any]) -> None:
    raw = [d.draw(events("gw-1", first_seq + i)) for i, d in enumerate(draws)]
    assume(len({e["id"] for e in raw}) == len(raw))  # a repeated id is refused
    body = batch_body(raw, first_seq)
    batch = parse_batch(body)
    assert batch.bodies is not None
    assert batch == _parse_checked(body)
    assert list(batch.bodies) == [canonical_json(e) for e in raw]
    assert batch.encoded_events() == [e.encode() for e in batch.events]


@given(
    st.lists(events("gw-1", 1), min_size=1, max_size=3),
    st.integers(min_value=0, max_value=2),
    st.sampled_from(["id", "gateway_id", "seq", "occurred_at", "source", "type", "data"]),
    json_values,
)
@settings(max_examples=300)
def test_a_mutated_event_in_a_batch_is_never_taken_alone(
    raw: list[dict[str, Any]], index: int, key: str, value: Any
) -> None:
    raw = [{**e, "seq": 1 + i} for i, e in enumerate(raw)]
    raw[index % len(raw)] = {**raw[index % len(raw)], key: value}
    try:
        body = batch_body(raw)
    except ValueError:
        return  # not encodable (NaN): nothing to post
    assert_agrees_with_full_parse(body)


@given(
    st.lists(events("gw-1", 1), min_size=1, max_size=3),
    st.integers(min_value=0, max_value=2),
    st.text(max_size=10),
    json_values,
)
@settings(max_examples=300)
def test_mutated_data_in_a_batch_is_never_taken_alone(
    raw: list[dict[str, Any]], index: int, key: str, value: Any
) -> None:
    raw = [{**e, "seq": 1 + i} for i, e in enumerate(raw)]
    event = raw[index % len(raw)]
    raw[index % len(raw)] = {**event, "data": {**event["data"], key: value}}
    try:
        body = batch_body(raw)
    except ValueError:
        return
    assert_agrees_with_full_parse(body)


@given(
    st.lists(events("gw-1", 1), min_size=1, max_size=3),
    st.sampled_from(
        [
            {"separators": (", ", ": ")},
            {"ensure_ascii": True},
            {"sort_keys": False},
            {"indent": 1},
        ]
    ),
)
@settings(max_examples=100)
def test_other_spellings_of_a_valid_batch_are_parsed_fully(
    raw: list[dict[str, Any]], options: dict[str, Any]
) -> None:
    raw = [{**e, "seq": 1 + i} for i, e in enumerate(raw)]
    assume(len({e["id"] for e in raw}) == len(raw))  # a repeated id is refused
    events_json = [
        json.dumps(dict(reversed(e.items())), **{"separators": (",", ":"), **options}) for e in raw
    ]
    body = encode_batch("gw-1", 1, len(raw), [e.encode() for e in events_json])
    assert_agrees_with_full_parse(body)
    batch = parse_batch(body)
    assert [e.to_wire() for e in batch.events] == raw
    assert batch.encoded_events() == [canonical_json(e) for e in raw]


@given(st.data(), st.binary(max_size=3), st.integers(min_value=0))
@settings(max_examples=300)
def test_byte_edits_of_a_canonical_batch_are_never_taken_alone(
    data: st.DataObject, insert: bytes, where: int
) -> None:
    body = batch_body([data.draw(events("gw-1", 1))])
    at = where % len(body)
    cut = data.draw(st.integers(min_value=0, max_value=3))
    assert_agrees_with_full_parse(body[:at] + insert + body[at + cut :])


def test_a_duplicate_member_in_compact_form_is_refused(make_event: EventFactory) -> None:
    event = canonical_json(make_event(data={"order": "WH/MO/1", "qty": 5.0}))
    doubled = event.replace(b'"qty":5.0', b'"qty":5.0,"qty":5.0')
    with pytest.raises(WireValidationError, match="duplicate member 'qty'"):
        parse_batch(encode_batch("gw-1", 1, 1, [doubled]))


def test_an_integer_quantity_is_stored_as_the_float_encode_gives(make_event: EventFactory) -> None:
    event = canonical_json(make_event(data={"order": "WH/MO/1", "qty": 5}))
    assert b'"qty":5}' in event
    batch = parse_batch(encode_batch("gw-1", 1, 1, [event]))
    assert batch.bodies is None
    assert batch.encoded_events() == [event.replace(b'"qty":5}', b'"qty":5.0}')]


def test_a_date_not_in_the_calendar_is_named(make_event: EventFactory) -> None:
    raw = make_event(occurred_at="2025-02-30T00:00:00.000000Z")
    assert parse_events_fast([raw]) is None
    with pytest.raises(WireValidationError) as caught:
        parse_batch(encode_batch("gw-1", 1, 1, [canonical_json(raw)]))
    assert caught.value.location == "/events/0/occurred_at"
