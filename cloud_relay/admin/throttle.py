"""Backoff on admin token guesses, per client address, at the login form and the bearer API.

A client may get the token wrong a few times (a typo, a stale script); past that each further
wrong guess locks it out for twice as long as the last, up to a ceiling. While locked out its
requests are answered 429 with ``Retry-After`` without the token being compared at all, so
guessing runs at a few tries per lockout instead of hundreds a second. A right token ends the
count. Every lockout is logged with the client address. Behind a reverse proxy every client has
the proxy's address: there the proxy should throttle per client itself.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request

log = logging.getLogger(__name__)

#: Wrong guesses a client may make before it is locked out.
FREE_GUESSES = 5
#: The first lockout; each further wrong guess doubles it.
FIRST_LOCKOUT_SECONDS = 1.0
#: The longest lockout.
MAX_LOCKOUT_SECONDS = 900.0
#: Clients remembered at once; the longest-quiet are forgotten first.
MAX_CLIENTS = 10_000


@dataclass(frozen=True, slots=True)
class ThrottleStats:
    """What the throttle did since start."""

    wrong_guesses: int
    lockouts: int
    refused_while_locked: int
    clients_locked: int


@dataclass(slots=True)
class _Client:
    failures: int = 0
    locked_until: float = 0.0


class GuessThrottle:
    """Counts wrong admin tokens per client and says how long one must wait."""

    def __init__(
        self,
        *,
        free_guesses: int = FREE_GUESSES,
        first_lockout_seconds: float = FIRST_LOCKOUT_SECONDS,
        max_lockout_seconds: float = MAX_LOCKOUT_SECONDS,
        max_clients: int = MAX_CLIENTS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._free = free_guesses
        self._first = first_lockout_seconds
        self._max = max_lockout_seconds
        self._max_clients = max_clients
        self._clock = clock
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._wrong = 0
        self._lockouts = 0
        self._refused = 0

    def wait_seconds(self, client: str) -> int:
        """Whole seconds ``client`` must still wait before a guess is checked (0: go ahead)."""
        state = self._clients.get(client)
        if state is None:
            return 0
        left = state.locked_until - self._clock()
        if left <= 0:
            return 0
        self._refused += 1
        return max(1, math.ceil(left))

    def failed(self, client: str, where: str) -> None:
        """Record a wrong token from ``client`` at ``where`` (a path, for the log)."""
        self._wrong += 1
        state = self._clients.pop(client, None) or _Client()
        self._clients[client] = state
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
        state.failures += 1
        over = state.failures - self._free
        if over <= 0:
            return
        lockout = min(self._max, self._first * 2 ** min(over - 1, 32))
        state.locked_until = self._clock() + lockout
        self._lockouts += 1
        log.warning(
            "admin token: %d wrong guesses from %s; locked out for %.0f s",
            state.failures,
            client,
            lockout,
            extra={"client": client, "path": where, "failures": state.failures},
        )

    def succeeded(self, client: str) -> None:
        """A right token from ``client``: its count starts over."""
        self._clients.pop(client, None)

    def stats(self) -> ThrottleStats:
        now = self._clock()
        locked = sum(1 for state in self._clients.values() if state.locked_until > now)
        return ThrottleStats(self._wrong, self._lockouts, self._refused, locked)


def client_of(request: Request) -> str:
    """The address a request came from, the unit the throttle counts by."""
    return request.client.host if request.client is not None else "unknown"
