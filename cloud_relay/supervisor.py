"""Keeps a long-lived component running: log a crash with its traceback, back off, restart.

The relay's Odoo writer runs under one: a store that restarts under it (PostgreSQL going away,
a SQLite file briefly locked) ends one run of the writer, not posting for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisorStats:
    """Restarts of one component since start, for the admin page and ``/metrics``."""

    restarts: int
    last_crash: str | None


class Supervisor:
    """Runs ``component()`` until cancelled, restarting it with capped, jittered backoff."""

    def __init__(self, name: str, *, min_seconds: float = 1.0, max_seconds: float = 60.0) -> None:
        if min_seconds <= 0 or max_seconds < min_seconds:
            raise ValueError("supervisor backoff: 0 < min_seconds <= max_seconds")
        self.name = name
        self._min = min_seconds
        self._max = max_seconds
        self._restarts = 0
        self._last_crash: str | None = None

    async def run(self, component: Callable[[], Awaitable[None]]) -> None:
        """Run ``component`` again each time it returns or raises; only cancellation ends it."""
        loop = asyncio.get_running_loop()
        failures = 0
        while True:
            started = loop.time()
            try:
                await component()
                log.warning("%s stopped by itself; restarting", self.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._last_crash = f"{type(exc).__name__}: {exc}"
                log.exception("%s crashed; restarting", self.name, extra={"component": self.name})
            self._restarts += 1
            if loop.time() - started > self._max:
                failures = 0  # it ran well for a while: this is a fresh failure
            ceiling = min(self._max, self._min * 2 ** min(failures, 32))
            failures += 1
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))

    def stats(self) -> SupervisorStats:
        """Restarts so far and the last crash's exception, one line."""
        return SupervisorStats(self._restarts, self._last_crash)
