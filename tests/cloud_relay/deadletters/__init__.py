"""Dead-letter tests; the builders below seed dead letters the way the writer makes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cloud_relay.posting.store import NewPosting, PostingStore
from tests.cloud_relay.support import event_dict
from wire.encoding import canonical_json

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    """``minutes`` after the test epoch."""
    return T0 + timedelta(minutes=minutes)


class Seeder:
    """Routes events into a posting store and dead-letters them, as the writer would."""

    def __init__(self, store: PostingStore, gateway_id: str = "line-1") -> None:
        self.store = store
        self.gateway_id = gateway_id
        self.seq = 0

    async def queue(self, order: str, qty: float = 1.0) -> NewPosting:
        """Route one ``production.reported`` event of MO ``order``; it stays pending."""
        return await self.queue_key(f"mo:{order}", canonical_json(self._event(order, qty)))

    async def queue_key(self, order_key: str, body: bytes, type_: str = "") -> NewPosting:
        """Route an event body under ``order_key``; it stays pending."""
        self.seq += 1
        posting = NewPosting(
            event_id=f"00000000-0000-7000-8000-{self.seq:012d}",
            gateway_id=self.gateway_id,
            seq=self.seq,
            order_key=order_key,
            type=type_ or "production.reported",
            occurred_at=at(self.seq),
            body=body,
        )
        await self.store.add_postings(self.gateway_id, self.seq, [posting])
        return posting

    async def dead(
        self, order: str, error: str = "MO not found", *, attempts: int = 2, minute: float = 60
    ) -> int:
        """Route an event of MO ``order`` and dead-letter it after ``attempts`` refusals."""
        posting = await self.queue(order)
        return await self.kill(posting.order_key, error, attempts=attempts, minute=minute)

    async def kill(
        self, order_key: str, error: str, *, attempts: int = 2, minute: float = 60
    ) -> int:
        """Dead-letter the oldest pending posting of ``order_key``; the dead letter's id."""
        for attempt in range(attempts):
            await self.store.park(order_key, error, at(minute + attempt + 1), at(minute + attempt))
        oldest = (await self.store.pending(order_key, 1))[0]
        return await self.store.dead_letter(order_key, oldest.pid, error, at(minute + attempts))

    def _event(self, order: str, qty: float) -> dict[str, object]:
        event = event_dict(self.gateway_id, self.seq + 1, order=order, qty=qty)
        event["id"] = f"00000000-0000-7000-8000-{self.seq + 1:012d}"
        return event
