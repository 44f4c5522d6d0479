"""A budget of request-body bytes being read at once, across all uploads of one replica.

Each upload reserves what it may hold (its ``Content-Length``, or the body cap when it names
none) before a byte of its body is read, and gives it back when answered. An upload that does
not fit is refused at once with 503 and ``Retry-After``: memory stays bounded however many
uploads arrive together, and a gateway simply retries, as it does whenever the relay is busy.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BudgetStats:
    """Bytes reserved now, the most ever reserved at once, and uploads turned away."""

    reserved_bytes: int
    peak_bytes: int
    refused: int


class BodyBudget:
    """Reservations against ``max_bytes``; one event loop uses it, so no lock is needed."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._reserved = 0
        self._peak = 0
        self._refused = 0

    def reserve(self, size: int) -> bool:
        """Take ``size`` bytes if they fit; False (counted) when they do not.

        A single upload larger than the whole budget is let through when nothing else is
        reserved, so the budget can never refuse a body the size cap allows.
        """
        if self._reserved and self._reserved + size > self.max_bytes:
            self._refused += 1
            return False
        self._reserved += size
        self._peak = max(self._peak, self._reserved)
        return True

    def release(self, size: int) -> None:
        """Give back what :meth:`reserve` took."""
        self._reserved -= size

    def stats(self) -> BudgetStats:
        return BudgetStats(self._reserved, self._peak, self._refused)
