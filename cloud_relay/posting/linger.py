"""Orders that just posted everything they had wait a moment, so a live stream folds.

After a round of Odoo calls that emptied an order's queue, the order waits ``linger_seconds``
before its next round: events arriving meanwhile go together instead of one round each. A
backlog is never held back (only rounds that took all that was pending linger).
"""

from __future__ import annotations

import time


class Linger:
    """When each lingering order's last round started, and how long orders linger."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._started: dict[str, float] = {}

    def hold(self, key: str, started: float) -> None:
        """The order's round that began at ``started`` (monotonic) emptied its queue."""
        if self.seconds > 0:
            self._started[key] = started

    def waiting(self) -> dict[str, float]:
        """Orders still lingering, with the seconds each has left."""
        if self.seconds <= 0:
            return {}
        now = time.monotonic()
        left = {key: at + self.seconds - now for key, at in self._started.items()}
        for key in [k for k, v in left.items() if v <= 0]:
            del self._started[key]
            del left[key]
        return left
