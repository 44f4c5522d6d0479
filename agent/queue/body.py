"""The bytes an event is queued and uploaded as: canonical JSON of its wire form.

Built in two halves around ``seq``, because ``seq`` is known only inside the commit: everything
else (id, timestamp, data) is encoded when the event is enqueued, by the caller, while the
writer is busy with the previous commit. Canonical JSON sorts keys, so the wire fields always
come in this order: data, gateway_id, id, occurred_at, seq, source, type. The result is byte
for byte ``canonical_json`` of the whole event (a test holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from agent.queue.model import NewEvent
from wire.encoding import canonical_json
from wire.events import format_timestamp
from wire.ids import new_event_id


@dataclass(frozen=True, slots=True)
class EncodedEvent:
    """An event's id and the bytes before and after its ``seq``."""

    id: str
    type: str
    head: bytes
    tail: bytes

    def body(self, seq: int) -> bytes:
        """The canonical JSON of the event once it has its ``seq``."""
        return b"".join((self.head, str(seq).encode(), self.tail))

    def size_estimate(self) -> int:
        """Body length give or take the digits of ``seq``."""
        return len(self.head) + len(self.tail) + 8


def encode_event(event: NewEvent, gateway_id: str) -> EncodedEvent:
    """Give ``event`` its id and encode all of it but the ``seq``.

    Raises ``TypeError`` or ``ValueError`` when ``data`` is not JSON (a NaN, an object).
    """
    event_id = new_event_id()
    data = event.data if type(event.data) is dict else dict(event.data)
    head = b"".join(
        (
            b'{"data":',
            canonical_json(data),
            _gateway_part(gateway_id),
            event_id.encode(),
            b'","occurred_at":"',
            format_timestamp(event.occurred_at).encode(),
            b'","seq":',
        )
    )
    return EncodedEvent(event_id, event.type, head, _tail(event.source, event.type))


# Sources, types and the gateway id repeat from event to event: encode each once.
@lru_cache(maxsize=16)
def _gateway_part(gateway_id: str) -> bytes:
    return b"".join((b',"gateway_id":', canonical_json(gateway_id), b',"id":"'))


@lru_cache(maxsize=4096)
def _tail(source: str, event_type: str) -> bytes:
    return b"".join(
        (b',"source":', canonical_json(source), b',"type":', canonical_json(event_type), b"}")
    )
