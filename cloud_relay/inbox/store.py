"""The inbox: where verified events are kept, once each, per gateway in seq order.

``InboxStore`` is the role; ``SqliteInbox`` and ``PostgresInbox`` implement it. The gateway key
registry lives in the same store, so every replica sees a revocation at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True, slots=True)
class InboxEvent:
    """One verified event as it is stored: ``body`` is the event's JSON as the gateway sent it."""

    id: str
    seq: int
    type: str
    occurred_at: datetime
    body: bytes


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event read back from the inbox, with its audit fields."""

    gateway_id: str
    seq: int
    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    key_id: str
    body: bytes


@dataclass(frozen=True, slots=True)
class GatewayKey:
    """A registered public key of a gateway."""

    key_id: str
    gateway_id: str
    public_key_pem: str
    added_at: datetime
    revoked_at: datetime | None
    role: str = "gateway"
    """``gateway`` (sends event batches) or ``publisher`` (submits BOMs); never both."""


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    """A gateway as the admin API shows it."""

    gateway_id: str
    acked_seq: int
    last_seen_at: datetime | None
    keys: tuple[GatewayKey, ...]


@dataclass(frozen=True, slots=True)
class StoreResult:
    """Outcome of storing a batch: the new contiguous ack point and how many events were new."""

    acked_seq: int
    stored: int


def check_batch(first_seq: int, events: Sequence[InboxEvent]) -> None:
    """Raise ValueError unless ``events`` run contiguously from ``first_seq`` (a caller bug)."""
    if first_seq < 1:
        raise ValueError(f"first_seq must be >= 1, got {first_seq}")
    for offset, event in enumerate(events):
        if event.seq != first_seq + offset:
            raise ValueError(
                f"event at offset {offset} has seq {event.seq}, not {first_seq + offset}"
            )


@dataclass(frozen=True, slots=True)
class InboxStats:
    """Counters of one inbox instance since it was opened (for the health page and /metrics)."""

    batches: int
    """store_batch calls that committed (replays included)."""
    events_stored: int
    """Events written for the first time."""
    events_replayed: int
    """Events received again at or below the ack point and skipped."""
    gaps: int
    """Batches refused because they started past the next expected seq."""
    transient_errors: int
    """Calls that failed with a TransientError."""


class InboxStore(Protocol):
    """Durable, deduplicating store of gateway events and keys."""

    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    async def close(self) -> None:
        """Release connections."""

    async def ping(self) -> None:
        """Raise :class:`~cloud_relay.errors.TransientError` when the store is unreachable."""

    async def store_batch(
        self, gateway_id: str, key_id: str, first_seq: int, events: Sequence[InboxEvent]
    ) -> StoreResult:
        """Store the events whose seq is past the gateway's ack point, atomically.

        Raises :class:`~cloud_relay.errors.SequenceGapError` when ``first_seq`` is past
        ``acked_seq + 1`` (nothing stored), :class:`~cloud_relay.errors.TransientError` when the
        store cannot write. Safe under concurrent calls for the same gateway from several replicas.
        """

    async def acked_seq(self, gateway_id: str) -> int:
        """Highest contiguous seq stored for the gateway (0 when none)."""

    async def events_after(self, gateway_id: str, after_seq: int, limit: int) -> list[StoredEvent]:
        """Stored events with seq > after_seq, in seq order (for audits)."""

    async def add_key(
        self, gateway_id: str, key_id: str, public_key_pem: str, role: str = "gateway"
    ) -> None:
        """Register a key for a gateway (creating the gateway); a gateway may hold several.
        ``role`` says what the key may sign: event batches (``gateway``) or BOMs
        (``publisher``)."""

    async def revoke_key(self, key_id: str) -> int:
        """Revoke one key; returns how many were revoked (0 or 1)."""

    async def revoke_gateway(self, gateway_id: str) -> int:
        """Revoke every key of a gateway; returns how many were revoked."""

    async def get_key(self, key_id: str) -> GatewayKey | None:
        """The key with this id, revoked or not."""

    async def list_gateways(self) -> list[GatewayInfo]:
        """Every gateway with its keys and ack point."""

    async def get_gateway(self, gateway_id: str) -> GatewayInfo | None:
        """One gateway."""

    def stats(self) -> InboxStats:
        """Counters since open."""
