"""An event id that collides with a stored one: which event, said the same by both inboxes."""

from __future__ import annotations

import re

from cloud_relay.errors import DuplicateEventError

_KEY_DETAIL = re.compile(r"Key \(id\)=\(([0-9a-fA-F-]{36})\) already exists")


def duplicate_event(
    gateway_id: str, first_seq: int, taken: tuple[str, int] | None
) -> DuplicateEventError:
    """The refusal of a batch holding ``taken`` (event id, seq), an id stored elsewhere."""
    if taken is None:
        return DuplicateEventError(
            f"gateway {gateway_id}: batch from seq {first_seq} holds an event id that is"
            " already stored under another gateway or seq",
            None,
        )
    event_id, seq = taken
    return DuplicateEventError(
        f"gateway {gateway_id}: event {event_id} (seq {seq}) is already stored under another"
        " gateway or seq; an event id is stored once",
        event_id,
    )


def taken_id_in_detail(detail: str | None) -> str | None:
    """The id named by PostgreSQL's unique-violation detail, ``Key (id)=(...) already exists``."""
    match = _KEY_DETAIL.search(detail or "")
    return match.group(1).lower() if match else None
