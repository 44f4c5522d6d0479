"""List, replay and discard dead letters; the one place these decisions are checked.

A replay puts the event back at the end of its order's queue; a discard closes the dead letter
without posting it. The store writes an audit entry with who and why in the same transaction
as the change, so the log cannot miss a decision that took effect.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cloud_relay.errors import RejectedError
from cloud_relay.posting.keys import order_name
from cloud_relay.posting.store import AuditEntry, DeadLetter, OrderState, PostingStore

ListStatus = Literal["dead", "replayed", "discarded", "all"]
SkipReason = Literal["not found", "already replayed", "discarded"]

LIST_STATUSES: tuple[ListStatus, ...] = ("dead", "replayed", "discarded", "all")
#: Dead letters read and replayed per transaction by ``--order`` and ``--all``.
REPLAY_BATCH = 500
#: The key prefix of manufacturing orders, which an order NAME stands for.
MO_PREFIX = "mo:"


class DeadLetterError(RejectedError):
    """A dead-letter action that cannot be done as asked."""


class InvalidRequest(DeadLetterError, ValueError):
    """The request itself is wrong (blank reason, no target): fix it and ask again."""


class DeadLetterNotFound(DeadLetterError):
    """No dead letter has this id."""

    def __init__(self, dead_letter_id: int) -> None:
        super().__init__(f"no dead letter {dead_letter_id}")
        self.dead_letter_id = dead_letter_id


class DeadLetterNotDead(DeadLetterError):
    """The dead letter was already replayed or discarded, so there is nothing left to decide."""

    def __init__(self, letter: DeadLetter) -> None:
        by = f" by {letter.resolved_by}" if letter.resolved_by else ""
        super().__init__(f"dead letter {letter.id} is already {letter.status}{by}")
        self.dead_letter_id = letter.id
        self.status = letter.status


@dataclass(frozen=True, slots=True)
class Replayed:
    """A dead letter whose event is queued again."""

    id: int
    order_key: str
    event_id: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """A dead letter asked for but not replayed, and why."""

    id: int
    reason: SkipReason


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """What one replay request did, in dead-letter id order."""

    replayed: tuple[Replayed, ...]
    skipped: tuple[Skipped, ...]


def order_keys(order: str) -> list[str]:
    """The order keys an order argument names: ``mo:NAME`` for an MO name, or itself when it is
    already a full key (``mo:…``, ``scrap:…``, ``inventory:…``)."""
    name = required_text(order, "order")
    return [name] if name.startswith(MO_PREFIX) else [MO_PREFIX + name, name]


async def list_dead(
    store: PostingStore,
    *,
    status: str = "dead",
    order: str | None = None,
    limit: int = 1000,
) -> list[DeadLetter]:
    """Dead letters of ``status`` (``all`` for every status), oldest first, at most ``limit``."""
    if status not in LIST_STATUSES:
        raise InvalidRequest(f"status {status!r}: must be one of {', '.join(LIST_STATUSES)}")
    wanted = None if status == "all" else status
    if order is None:
        return await store.list_dead_letters(status=wanted, limit=limit)
    found: dict[int, DeadLetter] = {}
    for key in order_keys(order):
        for letter in await store.list_dead_letters(status=wanted, order_key=key, limit=limit):
            found[letter.id] = letter
    return [found[i] for i in sorted(found)][:limit]


async def replay(
    store: PostingStore,
    *,
    ids: Sequence[int] | None = None,
    order: str | None = None,
    all_: bool = False,
    actor: str,
    reason: str | None = None,
    now: datetime | None = None,
) -> ReplayResult:
    """Queue again the events of the given dead letters, of one order's, or of all of them.

    Exactly one of ``ids``, ``order`` and ``all_`` says which. Ids that are unknown or no longer
    dead are skipped with the reason. With ``order`` or ``all_``, each event is replayed at
    most once per call, so an event the writer dead-letters again at once cannot loop.
    """
    chosen = sum((ids is not None, order is not None, all_))
    if chosen != 1:
        raise InvalidRequest("name exactly one of: dead letter ids, an order, or all")
    who = required_text(actor, "actor")
    why = optional_text(reason, "reason")
    at = now or datetime.now(UTC)
    if ids is not None:
        return await _replay_ids(store, ids, who, why, at)
    keys = None if order is None else order_keys(order)
    return await _replay_matching(store, keys, who, why, at)


async def discard(
    store: PostingStore,
    dead_letter_id: int,
    *,
    actor: str,
    reason: str,
    now: datetime | None = None,
) -> DeadLetter:
    """Close a dead letter without posting its event; the reason is required. Returns it as
    it now stands."""
    who = required_text(actor, "actor")
    why = required_text(reason, "reason")
    if await store.discard(dead_letter_id, who, why, now or datetime.now(UTC)):
        discarded = await store.get_dead_letter(dead_letter_id)
        if discarded is not None:
            return discarded
    letter = await store.get_dead_letter(dead_letter_id)
    if letter is None:
        raise DeadLetterNotFound(dead_letter_id)
    raise DeadLetterNotDead(letter)


async def _replay_ids(
    store: PostingStore, ids: Sequence[int], actor: str, reason: str | None, now: datetime
) -> ReplayResult:
    wanted = sorted(set(ids))
    if not wanted:
        raise InvalidRequest("name at least one dead letter id")
    letters: list[DeadLetter] = []
    skipped: list[Skipped] = []
    for dead_letter_id in wanted:
        letter = await store.get_dead_letter(dead_letter_id)
        if letter is None or letter.status != "dead":
            skipped.append(Skipped(dead_letter_id, _skip_reason(letter)))
        else:
            letters.append(letter)
    replayed, raced = await _replay_letters(store, letters, actor, reason, now)
    return ReplayResult(replayed, tuple(sorted([*skipped, *raced], key=lambda s: s.id)))


async def _replay_matching(
    store: PostingStore, keys: list[str] | None, actor: str, reason: str | None, now: datetime
) -> ReplayResult:
    replayed: list[Replayed] = []
    skipped: list[Skipped] = []
    done_events: set[str] = set()
    while True:
        # Dead letters that came back during this call have larger ids than every one that
        # was here before it, so a batch with nothing new means none of those is left.
        batch = [
            letter for letter in await _dead_of(store, keys) if letter.event_id not in done_events
        ]
        if not batch:
            return ReplayResult(tuple(replayed), tuple(skipped))
        done_events.update(letter.event_id for letter in batch)
        done, raced = await _replay_letters(store, batch, actor, reason, now)
        replayed += done
        skipped += raced


async def _dead_of(store: PostingStore, keys: list[str] | None) -> list[DeadLetter]:
    if keys is None:
        return await store.list_dead_letters(status="dead", limit=REPLAY_BATCH)
    found: list[DeadLetter] = []
    for key in keys:
        found += await store.list_dead_letters(status="dead", order_key=key, limit=REPLAY_BATCH)
    return sorted(found, key=lambda letter: letter.id)[:REPLAY_BATCH]


async def _replay_letters(
    store: PostingStore,
    letters: Sequence[DeadLetter],
    actor: str,
    reason: str | None,
    now: datetime,
) -> tuple[tuple[Replayed, ...], tuple[Skipped, ...]]:
    """Replay ``letters`` in one transaction; those someone else resolved meanwhile are
    reported as skipped with their new status."""
    if not letters:
        return (), ()
    done = set(await store.replay([letter.id for letter in letters], actor, reason, now))
    replayed = tuple(
        Replayed(letter.id, letter.order_key, letter.event_id)
        for letter in letters
        if letter.id in done
    )
    raced = []
    for letter in letters:
        if letter.id not in done:
            raced.append(Skipped(letter.id, _skip_reason(await store.get_dead_letter(letter.id))))
    return replayed, tuple(raced)


def _skip_reason(letter: DeadLetter | None) -> SkipReason:
    if letter is None:
        return "not found"
    return "discarded" if letter.status == "discarded" else "already replayed"


def required_text(value: str, what: str) -> str:
    """``value`` stripped; InvalidRequest when blank or not text a database can store."""
    text = value.strip()
    if not text:
        raise InvalidRequest(f"{what} is required and must not be blank")
    return _storable(text, what)


def optional_text(value: str | None, what: str) -> str | None:
    """``value`` stripped, None when blank; InvalidRequest when not text a database can store."""
    text = (value or "").strip()
    return _storable(text, what) if text else None


def _storable(text: str, what: str) -> str:
    # PostgreSQL text holds no NUL, and neither database takes a lone surrogate.
    if "\x00" in text:
        raise InvalidRequest(f"{what} must not contain NUL characters")
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise InvalidRequest(f"{what} is not valid Unicode text") from exc
    return text


def dead_letter_dict(letter: DeadLetter) -> dict[str, Any]:
    """A dead letter as JSON: the event decoded as ``event`` (``raw_body`` instead when it is
    not a JSON object), Odoo's message as ``error``, times in RFC 3339 UTC."""
    event, raw_body = _decoded(letter.body)
    return {
        "id": letter.id,
        "status": letter.status,
        "order_key": letter.order_key,
        "order": order_name(letter.order_key),
        "type": letter.type,
        "event_id": letter.event_id,
        "gateway_id": letter.gateway_id,
        "seq": letter.seq,
        "occurred_at": rfc3339(letter.occurred_at),
        "error": letter.error,
        "failed_since": rfc3339(letter.failed_since),
        "attempts": letter.attempts,
        "dead_at": rfc3339(letter.dead_at),
        "resolved_at": rfc3339(letter.resolved_at),
        "resolved_by": letter.resolved_by,
        "resolution": letter.resolution,
        "event": event,
        "raw_body": raw_body,
    }


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    """An audit entry as JSON."""
    return {
        "id": entry.id,
        "at": rfc3339(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "dead_letter_id": entry.dead_letter_id,
        "order_key": entry.order_key,
        "event_id": entry.event_id,
        "reason": entry.reason,
    }


def order_state_dict(state: OrderState) -> dict[str, Any]:
    """An order's posting state as JSON (ledger and intent are the writer's and left out)."""
    return {
        "key": state.order_key,
        "parked": state.parked,
        "reason": state.park_reason,
        "parked_since": rfc3339(state.parked_since),
        "attempts": state.attempts,
        "next_attempt_at": rfc3339(state.next_attempt_at),
        "pending": state.pending,
        "updated_at": rfc3339(state.updated_at),
    }


def replay_result_dict(result: ReplayResult) -> dict[str, Any]:
    """A replay's outcome as JSON."""
    return {
        "replayed": [
            {"id": r.id, "order_key": r.order_key, "event_id": r.event_id} for r in result.replayed
        ],
        "skipped": [{"id": s.id, "reason": s.reason} for s in result.skipped],
    }


def rfc3339(value: datetime | None) -> str | None:
    """``value`` in UTC as RFC 3339 with a ``Z``."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _decoded(body: bytes) -> tuple[dict[str, Any] | None, str | None]:
    try:
        event = json.loads(body)
    except ValueError:
        event = None
    if isinstance(event, dict):
        return event, None
    return None, body.decode("utf-8", errors="replace")
