"""Batches that can never be accepted, and hostile input from a registered gateway: each is
refused with a 4xx naming the event or field (never 503, never 500), and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cloud_relay.conftest import Relay
from tests.cloud_relay.support import Gateway, batch_body, event_dict, register, upload
from wire.batch import encode_batch
from wire.bounds import MAX_NESTING_DEPTH, MAX_NUMBER_CHARS
from wire.encoding import canonical_json

GW = "line-1"
OTHER = "line-2"


@pytest.fixture
async def gateway(relay: Relay) -> Gateway:
    return await register(relay.store, GW)


async def stored_ids(relay: Relay, gateway_id: str = GW) -> list[str]:
    return [e.id for e in await relay.store.events_after(gateway_id, 0, 100_000)]


def body_of(gateway_id: str, first_seq: int, events: list[dict[str, Any]]) -> bytes:
    encoded = [canonical_json(e) for e in events]
    return encode_batch(gateway_id, first_seq, first_seq + len(events) - 1, encoded)


async def test_an_event_id_twice_in_one_batch_is_422_naming_the_event(
    relay: Relay, gateway: Gateway
) -> None:
    first = event_dict(GW, 1)
    second = {**event_dict(GW, 2), "id": first["id"]}
    response = await upload(relay.client, relay.url, gateway, body_of(GW, 1, [first, second]))
    assert response.status_code == 422, response.text
    assert response.json()["location"] == "/events/1/id"
    assert first["id"] in response.json()["error"]
    assert await stored_ids(relay) == []


async def test_an_id_stored_under_another_seq_is_409_naming_the_event(
    relay: Relay, gateway: Gateway
) -> None:
    first = event_dict(GW, 1)
    assert (await upload(relay.client, relay.url, gateway, body_of(GW, 1, [first]))).json() == {
        "acked_seq": 1
    }
    again = {**event_dict(GW, 2), "id": first["id"]}
    body = body_of(GW, 2, [event_dict(GW, 2) | {"seq": 2}, again | {"seq": 3}])
    response = await upload(relay.client, relay.url, gateway, body)
    assert response.status_code == 409, response.text
    assert response.json()["event_id"] == first["id"]
    assert "expected_seq" not in response.json()
    assert first["id"] in response.json()["error"] and "seq 3" in response.json()["error"]
    assert await stored_ids(relay) == [first["id"]]
    assert await relay.store.acked_seq(GW) == 1


async def test_another_gateways_events_resent_under_a_second_gateway_are_409(
    relay: Relay, gateway: Gateway
) -> None:
    other = await register(relay.store, OTHER)
    events = [event_dict(GW, seq) for seq in (1, 2)]
    assert (await upload(relay.client, relay.url, gateway, body_of(GW, 1, events))).status_code
    stolen = [{**e, "gateway_id": OTHER} for e in events]
    response = await upload(relay.client, relay.url, other, body_of(OTHER, 1, stolen))
    assert response.status_code == 409, response.text
    assert response.json()["event_id"] == events[0]["id"]
    assert await stored_ids(relay, OTHER) == []
    assert await relay.store.acked_seq(OTHER) == 0
    # The gateway is not stuck: its own events are taken right after.
    response = await upload(relay.client, relay.url, other, batch_body(OTHER, 1, 2))
    assert response.json() == {"acked_seq": 2}


def _with(field: str, raw: bytes) -> bytes:
    """A one-event batch whose ``field`` (an envelope or data member) holds ``raw`` JSON text."""
    event = event_dict(GW, 1)
    placeholder = "@@value@@"
    if field.startswith("data/"):
        event["data"][field.removeprefix("data/")] = placeholder
    else:
        event[field] = placeholder
    text = json.dumps(event).encode().replace(b'"@@value@@"', raw)
    return encode_batch(GW, 1, 1, [text])


HOSTILE = {
    "early occurred_at": (
        _with("occurred_at", b'"0001-01-01T00:00:00+01:00"'),
        "/events/0/occurred_at",
    ),
    "late occurred_at": (
        _with("occurred_at", b'"9999-12-31T23:59:59-01:00"'),
        "/events/0/occurred_at",
    ),
    "nested 1,000 deep": (_with("data/qty", b"[" * 1000 + b"]" * 1000), "/events/0/data/qty"),
    "5,000-digit integer": (_with("data/qty", b"9" * 5000), "/events/0/data/qty"),
    "5,000-digit fraction": (_with("data/qty", b"1." + b"5" * 5000), "/events/0/data/qty"),
    "seq past 64 bits": (_with("seq", str(2**64).encode()), "/events/0/seq"),
    "lone surrogate": (_with("source", b'"\\ud800"'), "/events/0/source"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_hostile_input_is_422_naming_the_field(
    relay: Relay, gateway: Gateway, case: str
) -> None:
    body, location = HOSTILE[case]
    response = await upload(relay.client, relay.url, gateway, body)
    assert response.status_code == 422, response.text
    assert response.json()["location"].startswith(location), response.json()
    assert await stored_ids(relay) == []
    # Healthy traffic goes on.
    response = await upload(relay.client, relay.url, gateway, batch_body(GW, 1, 1))
    assert response.json() == {"acked_seq": 1}


async def test_the_bounds_leave_room_for_every_valid_batch(relay: Relay, gateway: Gateway) -> None:
    """A qty at the longest float repr and the largest seq are accepted: the bounds cut only
    what no gateway sends."""
    qty = -2.2250738585072014e-308
    assert len(repr(qty)) < MAX_NUMBER_CHARS and MAX_NESTING_DEPTH > 3
    body = batch_body(GW, 1, 1, e0={"qty": abs(qty) * 1e300})
    response = await upload(relay.client, relay.url, gateway, body)
    assert response.json() == {"acked_seq": 1}
