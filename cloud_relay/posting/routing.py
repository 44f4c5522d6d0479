"""Which queue an event is posted in: its manufacturing order, or the record it counts.

Events of one key are posted one after another in the order they were stored; keys are
independent, so a refused order never holds up another. Keys read as what they name:
``mo:WH/MO/00012``, ``scrap:BOLT-M8`` (a scrap tied to no order), ``inventory:WH/Stock:BOLT-M8``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cloud_relay.posting import transfer
from wire.events import DATA_MODELS

#: Event types kept at the relay and never posted to Odoo.
NOT_POSTED = frozenset({"signal.sampled"})

#: The key of events whose body cannot be read back (they go straight to the dead letters).
UNREADABLE = "unreadable"


def order_key(event_type: str, data: Mapping[str, Any]) -> str | None:
    """The posting queue of an event, or None when it is not posted to Odoo."""
    if event_type in NOT_POSTED:
        return None
    stock_key = transfer.key_of(event_type, data)
    if stock_key is not None:
        return stock_key
    if event_type == "inventory.counted":
        return f"inventory:{data['location']}:{data['product']}"
    if event_type == "scrap.reported" and not data.get("order"):
        return f"scrap:{data['product']}"
    return f"mo:{data['order']}"


def key_of_body(body: bytes) -> tuple[str, str | None]:
    """The type and posting key of a stored event body (``UNREADABLE`` when it is not an event
    of a known type with the fields its key needs)."""
    try:
        event = json.loads(body)
        event_type = event["type"]
        data = event["data"]
        if event_type not in DATA_MODELS:
            return str(event_type), UNREADABLE
        return event_type, order_key(event_type, data)
    except (ValueError, KeyError, TypeError):
        return "unknown", UNREADABLE


def order_name(key: str) -> str | None:
    """The MO name of an ``mo:`` key, else None."""
    return key[3:] if key.startswith("mo:") else None
