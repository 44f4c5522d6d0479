"""What the uploader reports about itself to the health page and ``/metrics``."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
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
    ack_rate_per_second: float | None = None
    """Events the relay acknowledged per second lately (:class:`AckRate`); None when unknown."""
    relay_clock_skew_seconds: float | None = None
    """The relay's clock minus ours, from the ``Date`` of its latest answer (about ±1 s)."""
    link_check: str | None = None
    """The latest probe's verdict (:data:`agent.uploader.probe.LinkState`); None before one."""
    link_check_words: str | None = None
    """The latest probe's verdict in words."""
    link_check_at: datetime | None = None
    """When the latest probe was answered (or failed)."""


class AckRate:
    """Events acknowledged per second over a sliding window, for the time-to-drain estimate.

    Measured up to now rather than to the latest acknowledgement, so the rate falls towards zero
    while the relay stops acknowledging instead of promising a drain that is not happening.
    """

    def __init__(
        self, window_seconds: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._window = window_seconds
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def record(self, acked_seq: int) -> None:
        """Note that the relay now has everything through ``acked_seq``."""
        now = self._clock()
        self._samples.append((now, acked_seq))
        while self._samples[0][0] < now - self._window:
            self._samples.popleft()

    def per_second(self) -> float | None:
        """The recent rate, or None without two acknowledgements inside the window."""
        now = self._clock()
        recent = [(at, seq) for at, seq in self._samples if at >= now - self._window]
        if len(recent) < 2 or now <= recent[0][0]:
            return None
        return (recent[-1][1] - recent[0][1]) / (now - recent[0][0])
