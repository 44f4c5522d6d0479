"""Property: the body spliced around ``seq`` is byte for byte the canonical JSON of the event."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.queue.body import encode_event
from agent.queue.model import NewEvent
from wire.encoding import canonical_json
from wire.events import DATA_MODELS, format_timestamp

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(), inner, max_size=4)
    ),
    max_leaves=12,
)
moments = st.datetimes(
    min_value=datetime(1971, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.sampled_from(
        [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=8))]
    ),
)


@given(
    data=st.dictionaries(st.text(), json_values, max_size=6),
    source=st.text(min_size=1),
    event_type=st.sampled_from(sorted(DATA_MODELS)),
    gateway=st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True),
    when=moments,
    seq=st.integers(1, 2**53),
)
def test_spliced_body_is_canonical_json(
    data: dict[str, object], source: str, event_type: str, gateway: str, when: datetime, seq: int
) -> None:
    encoded = encode_event(NewEvent(event_type, when, source, data), gateway)
    expected = canonical_json(
        {
            "id": encoded.id,
            "gateway_id": gateway,
            "seq": seq,
            "type": event_type,
            "occurred_at": format_timestamp(when),
            "source": source,
            "data": data,
        }
    )
    assert encoded.body(seq) == expected
    assert abs(encoded.size_estimate() - len(expected)) <= 8
    assert json.loads(expected)["seq"] == seq


def test_data_that_is_not_json_is_refused() -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        encode_event(NewEvent("signal.sampled", when, "s", {"value": float("nan")}), "gw")
    with pytest.raises(TypeError):
        encode_event(NewEvent("signal.sampled", when, "s", {"value": object()}), "gw")
