"""Keeps a long-lived component running: log a crash with its traceback, back off, restart."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runtime.backoff import Backoff

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SupervisorStats:
    """Restarts per component, for the health page and ``/metrics``."""

    restarts: int
    last_crash: str | None


class Supervisor:
    """Runs ``component()`` until cancelled, restarting it with capped, jittered backoff."""

    def __init__(self, name: str, *, min_seconds: float = 1.0, max_seconds: float = 60.0) -> None:
        self.name = name
        self._min = min_seconds
        self._max = max_seconds
        self._restarts = 0
        self._last_crash: str | None = None

    async def run(self, component: Callable[[], Awaitable[None]]) -> None:
        backoff = Backoff(self._min, self._max)
        loop = asyncio.get_running_loop()
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
                backoff.reset()  # it ran well for a while: this is a fresh failure
            await asyncio.sleep(backoff.next_delay())

    def stats(self) -> SupervisorStats:
        return SupervisorStats(self._restarts, self._last_crash)
