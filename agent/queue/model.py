"""Plain data that goes in and out of the queue."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event a source wants queued; the queue gives it its ``id`` and ``seq``.

    ``data`` must already be valid for ``type`` (:func:`wire.events.validate_data`).
    ``dedupe_key``, when set, makes a later event with the same key a no-op.
    """

    type: str
    occurred_at: datetime
    source: str
    data: Mapping[str, Any]
    dedupe_key: str | None = None


@dataclass(frozen=True, slots=True)
class EnqueueResult:
    """What became of one :class:`NewEvent`: queued under ``seq``, a duplicate, shed, or
    ``rejected`` (why it cannot be stored; only when the caller asked to isolate rejects)."""

    seq: int | None
    duplicate: bool = False
    shed: bool = False
    rejected: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A queued event: its canonical JSON ``body`` is what is uploaded, byte for byte."""

    seq: int
    id: str
    type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Reject:
    """A payload a source refused, kept with its reason for a person to read."""

    at: datetime
    source: str
    where: str
    reason: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class QueueStats:
    """A snapshot of the queue for the health page, ``/metrics`` and ``queue-stats``."""

    pending: int
    first_seq: int | None
    last_seq: int | None
    acked_seq: int
    bytes: int
    max_bytes: int
    oldest_age_seconds: float | None
    full: bool
    rejected: int
    shed: int
    duplicates: int
    enqueued_total: int
    commits_total: int
    last_error: str | None = None
    moved_aside: tuple[str, ...] = field(default_factory=tuple)
