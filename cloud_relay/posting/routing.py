"""Which queue an event is posted in: the key its effect gives it (see ``effects/registry``).

Events of one key are posted one after another in the order they were stored; keys are
independent, so a refused order never holds up another. Keys read as what they name:
``mo:WH/MO/00012``, ``scrap:BOLT-M8`` (a scrap tied to no order), ``inventory:WH/Stock:BOLT-M8``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from cloud_relay.inbox.store import InboxStore
from cloud_relay.posting.effects.registry import NOT_POSTED, effect_of
from cloud_relay.posting.keys import order_name
from cloud_relay.posting.store import NewPosting, PostingQueue, WriterLock
from wire.events import DATA_MODELS

__all__ = ["NOT_POSTED", "UNREADABLE", "key_of_body", "order_key", "order_name", "route_events"]

#: The key of events whose body cannot be read back, or that no effect posts (they go
#: straight to the dead letters, with a reason).
UNREADABLE = "unreadable"
#: Events read from the inbox per gateway per routing pass.
ROUTE_BATCH = 2000


def order_key(event_type: str, data: Mapping[str, Any]) -> str | None:
    """The posting queue of an event, or None when it is not posted to Odoo."""
    if event_type in NOT_POSTED:
        return None
    model = DATA_MODELS.get(event_type)
    if model is None:
        return UNREADABLE
    try:
        found = effect_of(event_type, model.model_validate(data))
    except ValidationError:
        return UNREADABLE
    return UNREADABLE if found is None else found[1]


def key_of_body(body: bytes) -> tuple[str, str | None]:
    """The type and posting key of a stored event body (``UNREADABLE`` when it is not an event
    of a known type with valid data)."""
    try:
        event = json.loads(body)
        event_type = event["type"]
        data = event["data"]
    except (ValueError, KeyError, TypeError):
        return "unknown", UNREADABLE
    if not isinstance(event_type, str) or not isinstance(data, dict):
        return "unknown", UNREADABLE
    return event_type, order_key(event_type, data)


class _RoutingStore(WriterLock, PostingQueue, Protocol):
    """The cursors and the queue: what routing needs of the posting store."""


async def route_events(
    inbox: InboxStore, store: _RoutingStore, *, on_batch: Callable[[], None] = lambda: None
) -> int:
    """Queue the events stored since the last pass under their keys, moving each gateway's
    cursor with them; how many postings were added. ``on_batch`` runs after each batch."""
    cursors = await store.route_cursors()
    added = 0
    for gateway in await inbox.list_gateways():
        cursor = cursors.get(gateway.gateway_id, 0)
        while cursor < gateway.acked_seq:
            events = await inbox.events_after(gateway.gateway_id, cursor, ROUTE_BATCH)
            if not events:
                break
            postings = []
            for event in events:
                event_type, key = key_of_body(event.body)
                if key is None:
                    continue
                postings.append(
                    NewPosting(
                        event.id,
                        event.gateway_id,
                        event.seq,
                        key,
                        event_type,
                        event.occurred_at,
                        event.body,
                    )
                )
            cursor = events[-1].seq
            added += await store.add_postings(gateway.gateway_id, cursor, postings)
            on_batch()
    return added
