"""Event identifiers: UUIDv7, time-ordered and globally unique (the idempotency key in Odoo)."""

from __future__ import annotations

import uuid

import uuid_utils


def new_event_id() -> str:
    """Return a fresh UUIDv7 as its canonical lower-case string."""
    # uuid_utils keeps the timestamp true under load (a counter fills the same millisecond),
    # where a naive generator would push the time ahead 1 ms per id.
    return str(uuid_utils.uuid7())


def is_uuid7(value: str) -> bool:
    """Tell whether ``value`` is a canonical UUID string of version 7."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 7 and str(parsed) == value
