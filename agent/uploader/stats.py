"""What the uploader reports about itself to the health page and ``/metrics``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class UploaderStats:
    """A snapshot of the uplink to the relay.

    ``alarm`` is set while the relay refuses what we send in a way that needs a person (bad
    signature, unknown key, invalid batch, an event too large even alone, or the relay reporting
    less than it once acknowledged); it clears on the next accepted batch. ``last_error`` keeps
    the latest failure in words; the link is healthy again once ``last_success_at`` is newer than
    ``last_error_at``.
    """

    acked_seq: int
    """Highest seq the relay acknowledged and the queue has deleted."""
    in_flight: tuple[int, int] | None
    """First and last seq of the batch being posted right now."""
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    alarm: str | None
    batches_sent: int
    """Batches the relay answered with 200."""
    events_sent: int
    """Events in those batches (resent duplicates included)."""
    bytes_sent: int
    """Compressed body bytes of those batches."""
    retries: int
    """Posts that failed or were refused and had to be tried again."""
    relay_acked_seq: int | None
    """The relay's latest word on the highest contiguous seq it has stored."""
    backoff_seconds: float
    """Delay before the next attempt, 0 while uploading normally."""
    batch_max_events: int
    """Current most events per batch (lowered after a 413 from the relay)."""
    link_up: bool
    """Whether the latest post was accepted."""
