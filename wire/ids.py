"""Event identifiers: UUIDv7, time-ordered and globally unique (the idempotency key in Odoo)."""

from __future__ import annotations

import uuid

import uuid6


def new_event_id() -> str:
    """Return a fresh UUIDv7 as its canonical lower-case string."""
    return str(uuid6.uuid7())


def is_uuid7(value: str) -> bool:
    """Tell whether ``value`` is a canonical UUID string of version 7."""
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return parsed.version == 7 and str(parsed) == value
