"""The batch envelope a gateway posts to ``/v1/batches``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from wire.errors import WireValidationError
from wire.events import Event, parse_event, parse_events_fast

SCHEMA_VERSION: Final = 1
BATCH_PATH = "/v1/batches"


@dataclass(frozen=True, slots=True)
class Batch:
    """A contiguous run of one gateway's events, ``first_seq`` to ``last_seq`` inclusive."""

    schema_version: int
    gateway_id: str
    first_seq: int
    last_seq: int
    events: tuple[Event, ...]


def encode_batch(gateway_id: str, first_seq: int, last_seq: int, events: Sequence[bytes]) -> bytes:
    """Build a batch body from already-encoded events without decoding them again."""
    head = json.dumps(
        {
            "schema_version": SCHEMA_VERSION,
            "gateway_id": gateway_id,
            "first_seq": first_seq,
            "last_seq": last_seq,
        },
        separators=(",", ":"),
    ).encode()
    return head[:-1] + b',"events":[' + b",".join(events) + b"]}"


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
    try:
        raw = json.loads(body.decode("utf-8"), object_pairs_hook=_unique_keys)
    except UnicodeDecodeError as exc:
        raise WireValidationError("", f"body is not UTF-8: {exc}") from exc
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
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise WireValidationError(f"/{key}", "must be an integer >= 1")
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
