"""The posting store: the Odoo writer's durable state, beside the inbox in the same database.

Events are routed from the inbox into *postings*, queued per order key and applied in pid order;
each order keeps its ledger, the intent of a round of Odoo calls in flight and its parking (an
order Odoo refuses waits and is retried). A posting that can never be applied becomes a *dead
letter*, which a person replays or discards; each of those decisions is kept in the audit log.

``PostingStore`` is the whole store: the roles ``WriterLock``, ``PostingQueue`` and
``DeadLetterBook`` together; ``SqlitePostingStore`` and ``PostgresPostingStore`` implement it,
one module per role and backend (``queue_sqlite.py`` beside ``queue_postgres.py``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

DeadLetterStatus = Literal["dead", "replayed", "discarded"]
AuditAction = Literal["replay", "discard"]

DEAD_LETTER_STATUSES: frozenset[str] = frozenset({"dead", "replayed", "discarded"})


@dataclass(frozen=True, slots=True)
class NewPosting:
    """An inbox event routed to an order key, to be posted into Odoo."""

    event_id: str
    gateway_id: str
    seq: int
    order_key: str
    type: str
    occurred_at: datetime
    body: bytes


@dataclass(frozen=True, slots=True)
class Posting:
    """A stored posting; ``pid`` orders the postings of one order key."""

    pid: int
    event_id: str
    gateway_id: str
    seq: int
    order_key: str
    type: str
    occurred_at: datetime
    body: bytes


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the writer keeps about one order key (defaults for a key never seen)."""

    order_key: str
    ledger: dict[str, Any]
    intent: dict[str, Any] | None
    parked: bool
    park_reason: str | None
    parked_since: datetime | None
    """When the current parking began (the first failure of the run)."""
    attempts: int
    """Failed attempts during the current parking."""
    next_attempt_at: datetime | None
    pending: int
    """Pending postings of this order."""
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A posting the writer gave up on, with the reason, until a person resolves it."""

    id: int
    event_id: str
    gateway_id: str
    seq: int
    order_key: str
    type: str
    occurred_at: datetime
    body: bytes
    error: str
    """Odoo's message or the reason the writer gave."""
    failed_since: datetime
    attempts: int
    dead_at: datetime
    status: DeadLetterStatus
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One decision a person took on a dead letter."""

    id: int
    at: datetime
    actor: str
    action: AuditAction
    dead_letter_id: int
    order_key: str
    event_id: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class PostingCounts:
    """Sizes for the health page and /metrics: postings by state, open dead letters, parkings."""

    pending: int
    applied: int
    dead: int
    """Dead letters not yet replayed or discarded."""
    parked_orders: int


def check_postings(gateway_id: str, through_seq: int, postings: Sequence[NewPosting]) -> None:
    """Raise ValueError unless every posting is the gateway's and within ``through_seq``."""
    for posting in postings:
        if posting.gateway_id != gateway_id:
            raise ValueError(
                f"posting of event {posting.event_id} is from gateway {posting.gateway_id},"
                f" not {gateway_id}"
            )
        if posting.seq > through_seq:
            raise ValueError(
                f"posting of event {posting.event_id} has seq {posting.seq},"
                f" past through_seq {through_seq}"
            )


def check_status(status: str | None) -> None:
    """Raise ValueError for a dead-letter status filter that names no status."""
    if status is not None and status not in DEAD_LETTER_STATUSES:
        raise ValueError(f"dead letter status must be one of {sorted(DEAD_LETTER_STATUSES)}")


def aware(value: datetime) -> datetime:
    """``value`` itself; ValueError when naive, since the stores keep instants, not wall times."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: give an aware (UTC) time")
    return value


def encode_json(value: Mapping[str, Any]) -> str:
    """A JSON object as stored: text in both backends, since jsonb refuses the NUL that
    separates product and lot in ledger keys."""
    return json.dumps(value, separators=(",", ":"))


def decode_json(text: str) -> dict[str, Any]:
    """A stored JSON object."""
    value = json.loads(text)
    if not isinstance(value, dict):
        raise ValueError(f"stored JSON is a {type(value).__name__}, not an object")
    return value


class WriterLock(Protocol):
    """One writer per database, and how far each gateway's events were routed."""

    async def acquire_writer_lock(self) -> bool:
        """Take the database's writer lock without waiting; True when this instance holds it."""

    async def release_writer_lock(self) -> None:
        """Give the writer lock up (a no-op when not held)."""

    async def writer_lock_held(self) -> bool:
        """Whether this instance still holds the writer lock (False after a lost connection)."""

    async def route_cursor(self, gateway_id: str) -> int:
        """Highest seq of the gateway routed into postings (0 when none)."""

    async def route_cursors(self) -> dict[str, int]:
        """The route cursor of every gateway routed so far."""


class PostingQueue(Protocol):
    """Postings queued per order key, and each order's ledger, intent and parking."""

    async def add_postings(
        self, gateway_id: str, through_seq: int, postings: Sequence[NewPosting]
    ) -> int:
        """Queue the postings past the gateway's cursor and move it to ``through_seq``, at once.

        Events that need no posting are absent from ``postings`` but covered by ``through_seq``.
        Returns how many postings were inserted.
        """

    async def ready_orders(
        self, now: datetime, limit: int, exclude: Collection[str] = ()
    ) -> list[str]:
        """Order keys with pending postings that are not parked or are due, oldest first."""

    async def next_wakeup(self) -> datetime | None:
        """The earliest retry time of a parked order with pending postings."""

    async def pending(self, order_key: str, limit: int) -> list[Posting]:
        """Pending postings of the order in pid order."""

    async def order_state(self, order_key: str) -> OrderState:
        """The order's state (defaults for an unknown order)."""

    async def save_intent(
        self, order_key: str, intent: dict[str, Any] | None, now: datetime
    ) -> None:
        """Record (or clear) the round of Odoo calls about to be made for the order."""

    async def save_ledger(self, order_key: str, ledger: dict[str, Any], now: datetime) -> None:
        """Replace the order's ledger, leaving the rest of its state."""

    async def mark_applied(
        self,
        order_key: str,
        pids: Sequence[int],
        ledger: dict[str, Any],
        effects: Mapping[int, dict[str, Any]],
        now: datetime,
    ) -> None:
        """Mark postings applied with their effects, save the ledger, clear intent and parking.

        Raises ValueError, changing nothing, when a pid is not pending for the order.
        """

    async def park(
        self, order_key: str, reason: str, next_attempt_at: datetime, now: datetime
    ) -> OrderState:
        """Count a failed attempt and hold the order until ``next_attempt_at``."""

    async def unpark(self, order_key: str) -> None:
        """End the order's parking so it is ready at once."""

    async def parked_orders(self) -> list[OrderState]:
        """Parked orders, the longest parked first."""

    async def orders(self, limit: int = 1000) -> list[OrderState]:
        """Every order with a stored state, most recently updated first."""

    async def counts(self) -> PostingCounts:
        """Postings by state, open dead letters and parked orders."""

    async def applied_effects(self, order_key: str) -> list[tuple[Posting, dict[str, Any]]]:
        """Applied postings of the order with their effects, in pid order."""


class DeadLetterBook(Protocol):
    """Postings the writer gave up on, a person's replays and discards, and their audit log."""

    async def dead_letter(self, order_key: str, pid: int, error: str, now: datetime) -> int:
        """Move a pending posting to the dead letters and clear the order's parking; its id.

        Raises ValueError when the posting is not pending for the order.
        """

    async def list_dead_letters(
        self, *, status: str | None = "dead", order_key: str | None = None, limit: int = 1000
    ) -> list[DeadLetter]:
        """Dead letters oldest first; ``status`` None lists every status."""

    async def get_dead_letter(self, dead_letter_id: int) -> DeadLetter | None:
        """One dead letter, whatever its status."""

    async def replay(
        self, dead_letter_ids: Sequence[int], actor: str, reason: str | None, now: datetime
    ) -> list[int]:
        """Queue the dead letters' events again behind their orders' pending postings.

        Ids that are not dead (or not found) are skipped; returns the ids replayed, ascending.
        """

    async def discard(self, dead_letter_id: int, actor: str, reason: str, now: datetime) -> bool:
        """Resolve a dead letter without posting it; False when it is not dead."""

    async def audit_log(self, limit: int = 200) -> list[AuditEntry]:
        """Replays and discards, newest first."""


class PostingStore(WriterLock, PostingQueue, DeadLetterBook, Protocol):
    """Durable state of the Odoo writer; one writer per database, readers anywhere."""

    async def open(self) -> None:
        """Connect and create or migrate the posting tables."""

    async def close(self) -> None:
        """Release connections and the writer lock."""
