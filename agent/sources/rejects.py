"""A source's memory of the payloads it rejected: the last reason, recent ones, a calm log.

Every reject is kept in the queue's ``rejects`` table (``edge-agent rejects`` lists them); this
is what the health page and the log need on top: how many were rejected in the last minutes
(the banner turns amber) and one log line per burst rather than one per payload.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

#: Rejects this recent keep the health banner amber.
RECENT_SECONDS = 300.0
#: At most one log line per this many seconds per source; the rest are counted into the next.
LOG_EVERY_SECONDS = 60.0


class RejectLog:
    """Notes one source's rejects; :meth:`recent` and :attr:`last` feed its ``stats()``."""

    def __init__(
        self,
        source: str,
        logger: logging.Logger,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = source
        self._log = logger
        self._clock = clock
        self._times: deque[float] = deque()
        self._next_log_at = 0.0
        self._unlogged = 0
        self.last: str | None = None
        """The latest reject as ``where: reason``."""
        self.last_at: datetime | None = None

    def note(self, where: str, reason: str) -> None:
        """Record one rejected payload at ``where`` (a topic, a node) and log if it is time."""
        now = self._clock()
        self._times.append(now)
        self._trim(now)
        self.last = reason if where in reason else f"{where}: {reason}"
        self.last_at = datetime.now(UTC)
        if now < self._next_log_at:
            self._unlogged += 1
            return
        more = f" (and {self._unlogged} more since the last report)" if self._unlogged else ""
        what = reason if where in reason else f"{where}: {reason}"
        self._log.warning(
            "%s rejected a payload: %s%s",
            self._source,
            what,
            more,
            extra={"error": reason, "where": where},
        )
        self._unlogged = 0
        self._next_log_at = now + LOG_EVERY_SECONDS

    def recent(self) -> int:
        """Rejects in the last :data:`RECENT_SECONDS`."""
        self._trim(self._clock())
        return len(self._times)

    def _trim(self, now: float) -> None:
        while self._times and self._times[0] < now - RECENT_SECONDS:
            self._times.popleft()
