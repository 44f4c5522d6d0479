"""Fuzzing the relay's ingest: thousands of signed batches from registered gateways, most of
them mutated, against the relay under uvicorn and a real inbox. Whatever arrives: no answer is
a 5xx, nothing invalid is stored, and every valid batch is stored exactly once, in order.

``RELAY_FUZZ_BATCHES`` sets how many batches (default 1,000 per inbox), ``RELAY_FUZZ_SEED`` the
seed, so a failure can be replayed.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import zstandard

from tests.cloud_relay.conftest import Relay
from tests.cloud_relay.support import Gateway, event_dict, register, upload
from wire.batch import BATCH_PATH, encode_batch, parse_batch
from wire.encoding import canonical_json
from wire.errors import WireValidationError
from wire.ids import new_event_id
from wire.keys import generate_private_key
from wire.signing import sign_request

BATCHES = int(os.environ.get("RELAY_FUZZ_BATCHES", "1000"))
SEED = int(os.environ.get("RELAY_FUZZ_SEED", "20261207"))
GW = "line-1"
OTHER = "line-2"

Event = dict[str, Any]


def _nested(event: Event, depth: int) -> bytes:
    """``event`` with its qty nested ``depth`` arrays deep (as text: too deep to encode)."""
    qty = "[" * depth + "1.0" + "]" * depth
    return json.dumps(event).replace('"qty": 1.0', '"qty": ' + qty).encode()


def _without(event: Event, key: str) -> Event:
    return {k: v for k, v in event.items() if k != key}


#: Each makes one event invalid; the event stays encodable as JSON (some only as raw text).
EVENT_MUTATIONS: list[Callable[[Event, random.Random], Event | bytes]] = [
    lambda e, r: {**e, "occurred_at": "0001-01-01T00:00:00+01:00"},
    lambda e, r: {**e, "occurred_at": "9999-12-31T23:59:59-01:00"},
    lambda e, r: {**e, "occurred_at": "2025-02-30T00:00:00Z"},
    lambda e, r: {**e, "occurred_at": 1700000000},
    lambda e, r: {**e, "id": e["id"].upper()},
    lambda e, r: {**e, "id": "not-a-uuid"},
    lambda e, r: {**e, "seq": 0},
    lambda e, r: {**e, "seq": 2**64},
    lambda e, r: {**e, "seq": True},
    lambda e, r: {**e, "type": "production.unknown"},
    lambda e, r: {**e, "source": ""},
    lambda e, r: {**e, "source": "x" * 600},
    lambda e, r: {**e, "gateway_id": "-bad"},
    lambda e, r: {**e, "extra": 1},
    lambda e, r: _without(e, r.choice(sorted(e))),
    lambda e, r: {**e, "data": {**e["data"], "qty": -1.0}},
    lambda e, r: {**e, "data": {**e["data"], "qty": True}},
    lambda e, r: _nested(e, r.choice([9, 50, 1000, 100_000])),
    lambda e, r: {**e, "data": {**e["data"], "order": ""}},
    lambda e, r: {**e, "data": {**e["data"], "order": "x" * 300}},
    lambda e, r: {**e, "data": {**e["data"], "surplus": "y"}},
    lambda e, r: {**e, "data": []},
    lambda e, r: (
        json.dumps(e).replace('"qty": 1.0', '"qty": ' + "9" * r.choice([50, 5000])).encode()
    ),
    lambda e, r: json.dumps(e).replace('"qty": 1.0', '"qty": 1e999').encode(),
    lambda e, r: json.dumps(e).replace('"qty": 1.0', '"qty": NaN').encode(),
    lambda e, r: json.dumps(e).replace('"source": "', '"source": "\\ud800').encode(),
    lambda e, r: json.dumps(e).replace('"order": "', '"order": "\\udfff').encode(),
    lambda e, r: json.dumps(e).replace('"seq"', '"seq": 1, "seq"').encode(),
    lambda e, r: json.dumps(e).encode().replace(b"MO/001", b"MO/\xff\xfe"),
]


class Fuzzer:
    """Sends batches and keeps what the relay must hold afterwards."""

    def __init__(self, relay: Relay, gateway: Gateway, other: Gateway, rng: random.Random) -> None:
        self.relay = relay
        self.gateway = gateway
        self.other = other
        self.rng = rng
        self.acked = 0
        self.expected: list[tuple[int, str]] = []  # (seq, id) of what must be stored
        self.accepted_bodies: list[bytes] = []
        self.statuses: Counter[int] = Counter()

    def valid_events(self, count: int) -> list[Event]:
        return [event_dict(GW, self.acked + 1 + i) for i in range(count)]

    async def send(
        self, body: bytes, *, gateway: Gateway | None = None, encoding: str | None = None
    ) -> int:
        response = await upload(
            self.relay.client, self.relay.url, gateway or self.gateway, body, encoding=encoding
        )
        self.statuses[response.status_code] += 1
        assert response.status_code < 500, (response.status_code, response.text, body[:300])
        return response.status_code

    async def send_valid(self) -> None:
        events = self.valid_events(self.rng.randint(1, 5))
        body = _batch(events)
        status = await self.send(body, encoding=self.rng.choice([None, None, "gzip", "zstd"]))
        assert status == 200
        self.record(events)
        self.accepted_bodies.append(body)

    def record(self, events: list[Event]) -> None:
        for event in events:
            if event["seq"] > self.acked:
                self.expected.append((event["seq"], event["id"]))
                self.acked = event["seq"]

    async def send_invalid_event(self) -> None:
        events = self.valid_events(self.rng.randint(1, 4))
        index = self.rng.randrange(len(events))
        mutated = self.rng.choice(EVENT_MUTATIONS)(events[index], self.rng)
        raw = [
            mutated
            if i == index and isinstance(mutated, bytes)
            else canonical_json(mutated if i == index else e)
            for i, e in enumerate(events)
        ]
        body = encode_batch(GW, self.acked + 1, self.acked + len(events), raw)
        assert await self.send(body) in (400, 401, 403, 409, 413, 415, 422)

    async def send_unstorable(self) -> None:
        kind = self.rng.randrange(3)
        events = self.valid_events(2)
        if kind == 0:  # one id twice in the batch
            events[1]["id"] = events[0]["id"]
            assert await self.send(_batch(events)) == 422
        elif kind == 1 and self.expected:  # an id stored under another seq
            events[1]["id"] = self.rng.choice(self.expected)[1]
            assert await self.send(_batch(events)) == 409
        elif self.expected:  # this gateway's stored events re-sent under the other gateway
            stolen = {**event_dict(OTHER, 1), "id": self.rng.choice(self.expected)[1]}
            body = encode_batch(OTHER, 1, 1, [canonical_json(stolen)])
            assert await self.send(body, gateway=self.other) == 409

    async def send_envelope_mutation(self) -> None:
        events = self.valid_events(2)
        body = json.loads(_batch(events))
        choice = self.rng.randrange(8)
        if choice == 0:
            body["schema_version"] = 2
        elif choice == 1:
            body["last_seq"] += 1
        elif choice == 2:
            body["events"] = []
        elif choice == 3:
            body["gateway_id"] = OTHER
        elif choice == 4:
            body["first_seq"] = self.acked + 5  # a gap
            for offset, event in enumerate(body["events"]):
                event["seq"] = self.acked + 5 + offset
            body["last_seq"] = self.acked + 6
        elif choice == 5:
            body = [body]
        elif choice == 6:
            body["events"][0]["gateway_id"] = OTHER
        else:
            body["surplus"] = True
        status = await self.send(json.dumps(body).encode())
        assert status in (403, 409, 422), status

    async def send_byte_edit(self) -> None:
        """A valid body with bytes changed, signed as it is: valid or not, never a 5xx; when
        the relay takes it, what it stores is what the body says."""
        events = self.valid_events(self.rng.randint(1, 3))
        body = bytearray(_batch(events))
        for _ in range(self.rng.randint(1, 3)):
            at = self.rng.randrange(len(body))
            edit = self.rng.randrange(3)
            if edit == 0:
                body[at] = self.rng.randrange(256)
            elif edit == 1:
                del body[at]
            else:
                body.insert(at, self.rng.choice(b'{}[]",:0\\e.-'))
        status = await self.send(bytes(body))
        if status == 200:
            batch = parse_batch(bytes(body))
            self.record([e.to_wire() for e in batch.events])
            self.accepted_bodies.append(bytes(body))

    async def send_bad_transport(self) -> None:
        body = _batch(self.valid_events(2))
        url = self.relay.url + BATCH_PATH
        choice = self.rng.randrange(5)
        if choice == 1:  # signed by a key nobody registered
            status = await self.send(body, gateway=Gateway(GW, generate_private_key()))
        elif choice == 4:  # compressed, signed, but invalid inside
            status = await self.send(body.replace(b"1.0", b"-1.0", 1), encoding="gzip")
        else:
            headers: dict[str, str] = {}
            sent = body
            if choice == 0:  # altered after signing
                headers = sign_request("POST", url, body, self.gateway.private_key)
                sent = body.replace(b"MO/001", b"MO/002", 1)
            elif choice == 3:  # corrupt compression, signed as sent
                sent = zstandard.ZstdCompressor().compress(body)[:-4] + b"\0\0\0\0"
                headers = sign_request("POST", url, sent, self.gateway.private_key)
                headers["Content-Encoding"] = "zstd"
            response = await self.relay.client.post(url, content=sent, headers=headers)
            status = response.status_code
            self.statuses[status] += 1
        assert status in (401, 403, 422), status

    async def replay(self) -> None:
        if not self.accepted_bodies:
            return
        body = self.rng.choice(self.accepted_bodies)
        response = await upload(self.relay.client, self.relay.url, self.gateway, body)
        self.statuses[response.status_code] += 1
        assert response.json() == {"acked_seq": self.acked}


def _batch(events: list[Event]) -> bytes:
    first = events[0]["seq"]
    return encode_batch(GW, first, first + len(events) - 1, [canonical_json(e) for e in events])


async def test_fuzzed_batches_never_5xx_and_valid_ones_are_stored_once(relay: Relay) -> None:
    rng = random.Random(SEED)
    fuzzer = Fuzzer(relay, await register(relay.store, GW), await register(relay.store, OTHER), rng)
    actions = [
        (fuzzer.send_valid, 25),
        (fuzzer.send_invalid_event, 30),
        (fuzzer.send_unstorable, 8),
        (fuzzer.send_envelope_mutation, 10),
        (fuzzer.send_byte_edit, 15),
        (fuzzer.send_bad_transport, 6),
        (fuzzer.replay, 6),
    ]
    weighted = [action for action, weight in actions for _ in range(weight)]
    for _ in range(BATCHES):
        await rng.choice(weighted)()

    stored = await relay.store.events_after(GW, 0, 10 * BATCHES)
    assert [(e.seq, e.id) for e in stored] == fuzzer.expected
    assert len({e.id for e in stored}) == len(stored)
    for event in stored:
        # What is stored is a valid event in its canonical form.
        batch = parse_batch(encode_batch(GW, event.seq, event.seq, [event.body]))
        assert batch.events[0].encode() == event.body
    assert await relay.store.events_after(OTHER, 0, 10) == []
    assert await relay.store.acked_seq(GW) == fuzzer.acked
    assert not [s for s in fuzzer.statuses if s >= 500], fuzzer.statuses
    assert fuzzer.statuses[200] > BATCHES // 5 and fuzzer.statuses[422] > BATCHES // 5


def test_every_event_mutation_is_invalid_on_the_wire() -> None:
    """The oracle's premise: each mutation really makes the batch invalid."""
    rng = random.Random(SEED)
    for mutate in EVENT_MUTATIONS:
        event = event_dict(GW, 1)
        event["id"] = new_event_id()
        mutated = mutate(event, rng)
        raw = mutated if isinstance(mutated, bytes) else canonical_json(mutated)
        try:
            parse_batch(encode_batch(GW, 1, 1, [raw]))
        except WireValidationError:
            continue
        raise AssertionError(f"accepted: {raw[:200]!r}")
