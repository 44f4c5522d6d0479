"""Building blocks for the inbox tests: repeatable events and the store-maker type."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cloud_relay.inbox.store import InboxEvent, InboxStore
from wire.ids import new_event_id

StoreMaker = Callable[[], Awaitable[InboxStore]]
BASE_TIME = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


class EventMaker:
    """The same InboxEvent for the same (gateway, seq) every time, as a gateway resends it."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, int], InboxEvent] = {}

    def one(self, seq: int, gateway_id: str = "gw-1") -> InboxEvent:
        key = (gateway_id, seq)
        if key not in self._events:
            event_id = new_event_id()
            occurred_at = BASE_TIME + timedelta(seconds=seq, microseconds=seq)
            body = {
                "id": event_id,
                "gateway_id": gateway_id,
                "seq": seq,
                "type": "production.reported",
                "occurred_at": occurred_at.isoformat(),
                "source": "test",
                "data": {"order": "MO/0001", "qty": 1.0},
            }
            self._events[key] = InboxEvent(
                id=event_id,
                seq=seq,
                type="production.reported",
                occurred_at=occurred_at,
                body=json.dumps(body, separators=(",", ":")).encode(),
            )
        return self._events[key]

    def run(self, first: int, last: int, gateway_id: str = "gw-1") -> list[InboxEvent]:
        """Events ``first..last`` inclusive."""
        return [self.one(seq, gateway_id) for seq in range(first, last + 1)]
