"""The batch envelope a gateway posts to ``/v1/batches``.

Beyond the shape of each field: JSON nesting and number literals are bounded (:mod:`wire.bounds`),
seq numbers go up to :data:`~wire.events.MAX_SEQ`, and an event id appears at most once per batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic_core import SchemaValidator, ValidationError
from pydantic_core import core_schema as cs

from wire.bounds import check_depth
from wire.bounds import loads as bounded_loads
from wire.encoding import canonical_json
from wire.errors import WireValidationError
from wire.events import (
    MAX_SEQ,
    Event,
    events_in_normal_form,
    fast_events_schema,
    parse_event,
    parse_events_fast,
)

SCHEMA_VERSION: Final = 1
BATCH_PATH = "/v1/batches"

_EVENT_START = b'{"data":'
_NEXT_EVENT = b"," + _EVENT_START
_batch_validator = SchemaValidator(
    cs.typed_dict_schema(
        {
            "schema_version": cs.typed_dict_field(cs.literal_schema([SCHEMA_VERSION])),
            "gateway_id": cs.typed_dict_field(cs.str_schema(strict=True)),
            "first_seq": cs.typed_dict_field(cs.int_schema(ge=1, le=MAX_SEQ, strict=True)),
            "last_seq": cs.typed_dict_field(cs.int_schema(ge=1, le=MAX_SEQ, strict=True)),
            "events": cs.typed_dict_field(fast_events_schema(from_json=True)),
        },
        extra_behavior="forbid",
        strict=True,
    )
)


@dataclass(frozen=True, slots=True)
class Batch:
    """A contiguous run of one gateway's events, ``first_seq`` to ``last_seq`` inclusive."""

    schema_version: int
    gateway_id: str
    first_seq: int
    last_seq: int
    events: tuple[Event, ...]
    bodies: tuple[bytes, ...] | None = field(default=None, compare=False, repr=False)
    """Each event's :meth:`Event.encode` when the parser already holds it (else ``None``)."""

    def encoded_events(self) -> list[bytes]:
        """Each event's canonical JSON, as :meth:`Event.encode` gives it."""
        if self.bodies is not None:
            return list(self.bodies)
        return [e.encode() for e in self.events]


def encode_batch(gateway_id: str, first_seq: int, last_seq: int, events: Sequence[bytes]) -> bytes:
    """Build a batch body from already-encoded events without decoding them again."""
    return _head(gateway_id, first_seq, last_seq) + b"[" + b",".join(events) + b"]}"


def _head(gateway_id: str, first_seq: int, last_seq: int) -> bytes:
    """A body up to the events array: ``{"schema_version":1,...,"events":``."""
    head = json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "gateway_id": gateway_id,
            "first_seq": first_seq,
            "last_seq": last_seq,
        },
        separators=(",", ":"),
    ).encode()
    return head[:-1] + b',"events":'


class _DuplicateKeyError(ValueError):
    """An object names a member twice; parsers disagree on which one counts."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKeyError(key)
            seen.add(key)
    return result


def parse_batch(body: bytes) -> Batch:
    """Decode and validate a batch body; errors name the field (``/events/3/data/qty``)."""
    batch = _parse_canonical(body)
    if batch is None:
        batch = _parse_checked(body)
    _check_unique_ids(batch.events)
    return batch


def _check_unique_ids(events: Sequence[Event]) -> None:
    """Refuse a batch naming one event id twice: the second could never be stored."""
    if len({event.id for event in events}) == len(events):
        return
    first: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.id in first:
            raise WireValidationError(
                f"/events/{index}/id",
                f"event id {event.id} repeats the id of /events/{first[event.id]}",
            )
        first[event.id] = index


def _parse_canonical(body: bytes) -> Batch | None:
    """The batch, when ``body`` is exactly what :func:`encode_batch` makes of events in normal
    form (what every gateway sends); ``None`` for anything else, valid or not.

    The proof is byte equality of ``body`` with the re-encoding of what was parsed from it:
    the parsed values are then exactly what the body says (floats included), no object names
    a member twice (a re-encoded object holds each member once), and each event's bytes are
    its canonical JSON, which for an event in normal form is its :meth:`Event.encode`.
    """
    try:
        raw = _batch_validator.validate_json(body)
    except ValidationError:
        return None
    gateway_id, first_seq, last_seq = raw["gateway_id"], raw["first_seq"], raw["last_seq"]
    values = raw["events"]
    if last_seq - first_seq + 1 != len(values) or not values:
        return None
    head = _head(gateway_id, first_seq, last_seq)
    try:
        encoded = canonical_json(values)
    except ValueError:
        return None
    if len(body) != len(head) + len(encoded) + 1 or not body.startswith(head):
        return None
    if body[len(head) : -1] != encoded or body[-1:] != b"}":
        return None
    events = events_in_normal_form(values)
    if events is None:
        return None
    for index, event in enumerate(events):
        if event.gateway_id != gateway_id or event.seq != first_seq + index:
            return None
    # In canonical JSON an event object starts with its "data" member, and that text cannot
    # occur inside a string (its quote would be escaped), nor elsewhere in a batch whose
    # events hold only scalars and flat data: so it marks exactly where each event begins.
    pieces = encoded[1:-1].split(_NEXT_EVENT)
    if len(pieces) != len(events):
        return None
    bodies = (pieces[0], *(_EVENT_START + piece for piece in pieces[1:]))
    return Batch(SCHEMA_VERSION, gateway_id, first_seq, last_seq, tuple(events), bodies)


def _parse_checked(body: bytes) -> Batch:
    """Parse with every check, naming the first field that fails."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WireValidationError("", f"body is not UTF-8: {exc}") from exc
    check_depth(body)
    try:
        raw = bounded_loads(text, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        raise WireValidationError("", f"body is not JSON: {exc}") from exc
    except _DuplicateKeyError as exc:
        raise WireValidationError("", f"body has a duplicate member {exc.args[0]!r}") from exc
    if not isinstance(raw, dict):
        raise WireValidationError("", "batch must be a JSON object")
    for key in ("schema_version", "gateway_id", "first_seq", "last_seq", "events"):
        if key not in raw:
            raise WireValidationError(f"/{key}", "field required")
    extra = set(raw) - {"schema_version", "gateway_id", "first_seq", "last_seq", "events"}
    if extra:
        raise WireValidationError(f"/{sorted(extra)[0]}", "unknown field")
    if type(raw["schema_version"]) is not int or raw["schema_version"] != SCHEMA_VERSION:
        raise WireValidationError(
            "/schema_version", f"unsupported version {raw['schema_version']!r}"
        )
    gateway_id, first_seq, last_seq = raw["gateway_id"], raw["first_seq"], raw["last_seq"]
    if not isinstance(gateway_id, str):
        raise WireValidationError("/gateway_id", "must be a string")
    for key, value in (("first_seq", first_seq), ("last_seq", last_seq)):
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_SEQ:
            raise WireValidationError(f"/{key}", f"must be an integer from 1 to {MAX_SEQ}")
    events_raw: Any = raw["events"]
    if not isinstance(events_raw, list) or not events_raw:
        raise WireValidationError("/events", "must be a non-empty array")
    if last_seq - first_seq + 1 != len(events_raw):
        raise WireValidationError(
            "/last_seq", f"{len(events_raw)} events cannot span seq {first_seq}..{last_seq}"
        )
    fast = parse_events_fast(events_raw)
    if fast is not None and all(
        e.gateway_id == gateway_id and e.seq == first_seq + i for i, e in enumerate(fast)
    ):
        return Batch(SCHEMA_VERSION, gateway_id, first_seq, last_seq, tuple(fast))
    events: list[Event] = []
    for index, item in enumerate(events_raw):
        event = parse_event(item, f"/events/{index}")
        if event.gateway_id != gateway_id:
            raise WireValidationError(f"/events/{index}/gateway_id", "differs from the batch's")
        if event.seq != first_seq + index:
            raise WireValidationError(
                f"/events/{index}/seq", f"expected {first_seq + index}, got {event.seq}"
            )
        events.append(event)
    return Batch(
        schema_version=SCHEMA_VERSION,
        gateway_id=gateway_id,
        first_seq=first_seq,
        last_seq=last_seq,
        events=tuple(events),
    )
