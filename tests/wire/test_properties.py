"""Properties: any valid event survives canonical encoding and parsing unchanged."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from wire.batch import encode_batch, parse_batch
from wire.encoding import canonical_json
from wire.events import GATEWAY_ID_PATTERN, format_timestamp, parse_event, validate_data

names = st.text(min_size=1, max_size=256).filter(lambda s: s.strip() == s and s != "")
quantities = st.floats(min_value=0, exclude_min=True, allow_nan=False, allow_infinity=False)
counts = st.floats(min_value=0, allow_nan=False, allow_infinity=False)


def optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Each field present or absent (absent optionals are how the wire says 'none')."""
    return st.fixed_dictionaries({}, optional=fields)


def with_required(
    required: dict[str, st.SearchStrategy[Any]], **opt: st.SearchStrategy[Any]
) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(required, optional=opt)


operation_data = st.one_of(
    with_required({"order": names, "operation": names}, workcenter=names),
    with_required({"order": names, "workcenter": names}, operation=names),
)

DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "production.reported": with_required(
        {"order": names, "qty": quantities}, uom=names, lot=names, workcenter=names
    ),
    "material.consumed": with_required(
        {"order": names, "product": names, "qty": quantities}, uom=names, lot=names
    ),
    "scrap.reported": with_required(
        {"product": names, "qty": quantities},
        order=names,
        uom=names,
        lot=names,
        reason=st.text(max_size=1024),
    ),
    "operation.started": operation_data,
    "operation.paused": operation_data,
    "operation.finished": operation_data,
    "order.completed": st.fixed_dictionaries({"order": names, "backorder": st.booleans()}),
    "inventory.counted": with_required(
        {"product": names, "location": names, "qty": counts}, lot=names
    ),
    "stock.transferred": with_required(
        {"product": names, "qty": quantities, "from_location": names, "to_location": names},
        uom=names,
        lot=names,
        reference=names,
        operation_type=names,
        reason=st.text(max_size=1024),
    ),
    "stock.received": with_required(
        {"product": names, "qty": quantities, "location": names},
        uom=names,
        lot=names,
        reference=names,
        operation_type=names,
        reason=st.text(max_size=1024),
    ),
    "signal.sampled": with_required(
        {
            "name": names,
            "value": st.one_of(
                st.floats(allow_nan=False, allow_infinity=False),
                st.booleans(),
                st.text(max_size=1024),
            ),
        },
        unit=names,
    ),
}


@st.composite
def uuid7s(draw: st.DrawFn) -> str:
    bits = draw(st.integers(min_value=0, max_value=2**128 - 1))
    bits = (bits & ~(0xF << 76)) | (0x7 << 76)  # version 7
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return str(uuid.UUID(int=bits))


@st.composite
def events(
    draw: st.DrawFn, gateway_id: str | None = None, seq: int | None = None
) -> dict[str, Any]:
    event_type = draw(st.sampled_from(sorted(DATA)))
    moment = draw(
        st.datetimes(
            min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
        )
    )
    return {
        "id": draw(uuid7s()),
        "gateway_id": gateway_id or draw(st.from_regex(GATEWAY_ID_PATTERN, fullmatch=True)),
        "seq": seq or draw(st.integers(min_value=1, max_value=2**63 - 1)),
        "type": event_type,
        "occurred_at": format_timestamp(moment),
        "source": draw(st.text(min_size=1, max_size=512)),
        "data": draw(DATA[event_type]),
    }


@given(events())
@settings(max_examples=300)
def test_valid_event_round_trips_unchanged(raw: dict[str, Any]) -> None:
    encoded = canonical_json(raw)
    event = parse_event(json.loads(encoded))
    assert event.to_wire() == raw
    assert event.encode() == encoded


@given(st.sampled_from(sorted(DATA)).flatmap(lambda t: st.tuples(st.just(t), DATA[t])))
def test_validate_data_accepts_valid_data_unchanged(case: tuple[str, dict[str, Any]]) -> None:
    event_type, data = case
    assert validate_data(event_type, data) == data


@given(st.integers(min_value=1, max_value=2**40), st.integers(min_value=1, max_value=5), st.data())
@settings(max_examples=50)
def test_batches_round_trip(first_seq: int, count: int, data: st.DataObject) -> None:
    raw = [data.draw(events("gw-1", first_seq + i)) for i in range(count)]
    assume(len({e["id"] for e in raw}) == count)  # a repeated id is refused
    body = encode_batch("gw-1", first_seq, first_seq + count - 1, [canonical_json(e) for e in raw])
    assert [e.to_wire() for e in parse_batch(body).events] == raw
