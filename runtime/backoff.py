"""Capped exponential backoff with jitter, so gateways that lost the relay together do not
come back in lockstep."""

from __future__ import annotations

import random


class Backoff:
    """Delays that double from ``initial_seconds`` up to ``max_seconds``, each jittered.

    Attempt ``n`` (from 0) waits a uniform draw from ``[b/2, b]`` with
    ``b = min(max_seconds, initial_seconds * 2**n)``: never zero, never above the cap.
    """

    def __init__(
        self, initial_seconds: float, max_seconds: float, rng: random.Random | None = None
    ) -> None:
        if initial_seconds <= 0 or max_seconds <= 0:
            raise ValueError("backoff delays must be positive")
        self._initial = initial_seconds
        self._max = max(max_seconds, initial_seconds)
        self._rng = rng or random.Random()
        self._attempt = 0

    @property
    def attempt(self) -> int:
        """Consecutive failures since the last :meth:`reset`."""
        return self._attempt

    @property
    def max_seconds(self) -> float:
        """The cap on any delay."""
        return self._max

    def next_delay(self) -> float:
        """The delay before the next try; each call counts one more failure."""
        # Bound the exponent so that 2**n cannot overflow a float after years of failures.
        ceiling = min(self._max, self._initial * 2 ** min(self._attempt, 64))
        self._attempt += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        """Start again from ``initial_seconds`` after a success."""
        self._attempt = 0
