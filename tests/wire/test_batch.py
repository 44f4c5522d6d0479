"""Batch envelope: encode_batch builds it from event bytes, parse_batch checks all of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from wire.batch import encode_batch, parse_batch
from wire.encoding import canonical_json
from wire.errors import WireValidationError

EventFactory = Callable[..., dict[str, Any]]
IDS = [f"017f22e2-79b0-7cc3-98c4-dc0c0c0739{n:02x}" for n in range(16)]


def events(make_event: EventFactory, seqs: list[int], **overrides: Any) -> list[dict[str, Any]]:
    return [make_event(id=IDS[i], seq=seq, **overrides) for i, seq in enumerate(seqs)]


def body_of(raw: dict[str, Any]) -> bytes:
    return json.dumps(raw).encode()


def batch_dict(make_event: EventFactory, first: int = 1, count: int = 3) -> dict[str, Any]:
    return {
        "schema_version": 1,
        "gateway_id": "gw-1",
        "first_seq": first,
        "last_seq": first + count - 1,
        "events": events(make_event, list(range(first, first + count))),
    }


def rejected(body: bytes) -> WireValidationError:
    with pytest.raises(WireValidationError) as caught:
        parse_batch(body)
    return caught.value


def test_encode_then_parse_round_trips(make_event: EventFactory) -> None:
    raw = events(make_event, [7, 8, 9])
    body = encode_batch("gw-1", 7, 9, [canonical_json(e) for e in raw])
    batch = parse_batch(body)
    assert (batch.gateway_id, batch.first_seq, batch.last_seq) == ("gw-1", 7, 9)
    assert [e.to_wire() for e in batch.events] == raw
    assert [e.encode() for e in batch.events] == [canonical_json(e) for e in raw]


def test_encode_batch_splices_event_bytes_unchanged(make_event: EventFactory) -> None:
    event = canonical_json(make_event(data={"order": "MO-Ä", "qty": 1.0}))
    body = encode_batch("gw-1", 1, 1, [event])
    assert body.endswith(b'"events":[' + event + b"]}")
    assert json.loads(body)["events"][0]["data"]["order"] == "MO-Ä"


def test_a_gap_in_seq_names_the_event(make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    raw["events"][1]["seq"] = 3
    raw["events"][2]["seq"] = 4
    err = rejected(body_of(raw))
    assert err.location == "/events/1/seq"
    assert "expected 2, got 3" in err.message


def test_count_must_match_the_seq_span(make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    raw["last_seq"] = 4
    assert rejected(body_of(raw)).location == "/last_seq"


def test_last_before_first_is_rejected(make_event: EventFactory) -> None:
    raw = batch_dict(make_event, first=5, count=1)
    raw["last_seq"] = 3
    assert rejected(body_of(raw)).location == "/last_seq"


def test_mixed_gateways_are_rejected(make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    raw["events"][2]["gateway_id"] = "gw-2"
    err = rejected(body_of(raw))
    assert err.location == "/events/2/gateway_id"


def test_invalid_event_data_is_located_in_the_batch(make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    raw["events"][1]["data"]["qty"] = -1
    assert rejected(body_of(raw)).location == "/events/1/data/qty"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "not JSON"),
        (b"{", "not JSON"),
        (b"[1, 2]", "JSON object"),
        (b'"batch"', "JSON object"),
        (b'{"schema_version": 1, "schema_version": 1}', "duplicate member 'schema_version'"),
        ('{"gateway_id": "gw"}'.encode("utf-16"), "not UTF-8"),
        (b'{"gateway_id": "\xff"}', "not UTF-8"),
    ],
)
def test_bodies_that_are_not_a_json_object(body: bytes, message: str) -> None:
    err = rejected(body)
    assert err.location == ""
    assert message in err.message


def test_duplicate_member_inside_an_event_is_rejected(make_event: EventFactory) -> None:
    body = body_of(batch_dict(make_event, count=1)).replace(b'"qty": 5.0', b'"qty": 5.0, "qty": 50')
    assert b'"qty": 50' in body
    assert "duplicate member 'qty'" in rejected(body).message


def test_empty_events_are_rejected(make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    raw["events"] = []
    assert rejected(body_of(raw)).location == "/events"


@pytest.mark.parametrize(
    "field", ["schema_version", "gateway_id", "first_seq", "last_seq", "events"]
)
def test_missing_field_is_named(field: str, make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    del raw[field]
    assert rejected(body_of(raw)).location == f"/{field}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("schema_version", 2),
        ("schema_version", True),
        ("schema_version", 1.0),
        ("schema_version", "1"),
        ("gateway_id", 7),
        ("first_seq", 0),
        ("first_seq", "1"),
        ("first_seq", True),
        ("last_seq", 2.5),
        ("events", {"0": {}}),
    ],
)
def test_wrong_field_values_are_named(field: str, value: Any, make_event: EventFactory) -> None:
    raw = batch_dict(make_event, count=1)
    raw[field] = value
    assert rejected(body_of(raw)).location == f"/{field}"


def test_unknown_top_level_field_is_rejected(make_event: EventFactory) -> None:
    raw = batch_dict(make_event)
    raw["compressed"] = False
    err = rejected(body_of(raw))
    assert (err.location, err.message) == ("/compressed", "unknown field")
