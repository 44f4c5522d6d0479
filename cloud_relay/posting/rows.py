"""Column lists and row readers the SQLite and PostgreSQL posting stores share.

The two differ only in how a time comes back: RFC 3339 text from SQLite, a ``datetime`` from
PostgreSQL; each store passes its reader of a (possibly NULL) time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from cloud_relay.posting.store import AuditEntry, DeadLetter, OrderState, Posting, decode_json

#: A stored time as the backend returns it, read back as a datetime (None for NULL).
TimeReader = Callable[[Any], datetime | None]

EVENT_COLUMNS = "event_id, gateway_id, seq, order_key, type, occurred_at, body"
POSTING_COLUMNS = f"pid, {EVENT_COLUMNS}"
ORDER_FIELDS = (
    "o.ledger, o.intent, o.parked, o.park_reason, o.parked_since, o.attempts, o.next_attempt_at,"
    " o.updated_at"
)
DEAD_LETTER_COLUMNS = (
    f"id, {EVENT_COLUMNS}, error, failed_since, attempts, dead_at, status, resolved_at,"
    " resolved_by, resolution"
)
AUDIT_COLUMNS = "id, at, actor, action, dead_letter_id, order_key, event_id, reason"


def pending_of(alias: str) -> str:
    """A column counting the pending postings of the order key ``alias.order_key``."""
    return (
        f"(SELECT count(*) FROM postings p WHERE p.order_key = {alias}.order_key"
        " AND p.state = 'pending') AS pending"
    )


def _required(when: TimeReader, value: Any) -> datetime:
    moment = when(value)
    if moment is None:
        raise ValueError("a required time column is NULL")
    return moment


def posting(row: Any, when: TimeReader) -> Posting:
    """A ``POSTING_COLUMNS`` row."""
    return Posting(
        pid=row["pid"],
        event_id=row["event_id"],
        gateway_id=row["gateway_id"],
        seq=row["seq"],
        order_key=row["order_key"],
        type=row["type"],
        occurred_at=_required(when, row["occurred_at"]),
        body=bytes(row["body"]),
    )


def order(row: Any, when: TimeReader) -> OrderState:
    """An order row with ``pending``, or the defaults when the LEFT JOIN found none."""
    return OrderState(
        order_key=row["order_key"],
        ledger=decode_json(row["ledger"] or "{}"),
        intent=None if row["intent"] is None else decode_json(row["intent"]),
        parked=bool(row["parked"]),
        park_reason=row["park_reason"],
        parked_since=when(row["parked_since"]),
        attempts=row["attempts"] or 0,
        next_attempt_at=when(row["next_attempt_at"]),
        pending=row["pending"],
        updated_at=when(row["updated_at"]),
    )


def dead_letter(row: Any, when: TimeReader) -> DeadLetter:
    """A ``DEAD_LETTER_COLUMNS`` row."""
    return DeadLetter(
        id=row["id"],
        event_id=row["event_id"],
        gateway_id=row["gateway_id"],
        seq=row["seq"],
        order_key=row["order_key"],
        type=row["type"],
        occurred_at=_required(when, row["occurred_at"]),
        body=bytes(row["body"]),
        error=row["error"],
        failed_since=_required(when, row["failed_since"]),
        attempts=row["attempts"],
        dead_at=_required(when, row["dead_at"]),
        status=row["status"],
        resolved_at=when(row["resolved_at"]),
        resolved_by=row["resolved_by"],
        resolution=row["resolution"],
    )


def audit(row: Any, when: TimeReader) -> AuditEntry:
    """An ``AUDIT_COLUMNS`` row."""
    return AuditEntry(
        id=row["id"],
        at=_required(when, row["at"]),
        actor=row["actor"],
        action=row["action"],
        dead_letter_id=row["dead_letter_id"],
        order_key=row["order_key"],
        event_id=row["event_id"],
        reason=row["reason"],
    )
