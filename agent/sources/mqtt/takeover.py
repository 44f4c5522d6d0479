"""Spotting a second client with our MQTT client id: the broker keeps dropping us just after
accepting us.

A broker lets one connection hold a client id; a new CONNECT with the same id takes the session
over and closes the older connection (MQTT 5 says so with reason 0x8E, "Session taken over";
3.1.1 just closes it). Two agents configured with one gateway id therefore knock each other off
for ever, and each sees nothing but "connection lost". A link that is merely bad fails to
connect; this one connects every time and is closed soon after, so that pattern, a few times
in a row, is what is reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: Short-lived sessions in a row, each ended by the broker, that make the pattern.
SUSPECT_AFTER = 3
#: MQTT 5's reason code for a session taken over by a new connection with the same client id.
SESSION_TAKEN_OVER = "Session taken over"


class TakeoverWatch:
    """Follows one source's sessions; :attr:`suspect` says what a person should check."""

    def __init__(
        self,
        client_id: str,
        short_session_seconds: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client_id = client_id
        self._short = short_session_seconds
        self._clock = clock
        self._connected_at: float | None = None
        self._in_a_row = 0
        self.suspect: str | None = None
        """Set while the sessions look taken over by another client; None otherwise."""

    def connected(self) -> None:
        """A CONNACK was received."""
        self._connected_at = self._clock()

    def closed(self, why: str) -> bool:
        """The session ended for ``why``; return whether this makes the pattern newly seen."""
        started, self._connected_at = self._connected_at, None
        lasted = None if started is None else self._clock() - started
        if lasted is None or lasted >= self._short or why == "closed by the agent":
            self._in_a_row = 0
            self.suspect = None
            return False
        self._in_a_row += 1
        taken_over = SESSION_TAKEN_OVER in why
        if self.suspect is not None or (not taken_over and self._in_a_row < SUSPECT_AFTER):
            return False
        what = (
            "the broker says the session was taken over by a new connection"
            if taken_over
            else f"the broker closed {self._in_a_row} connections in a row within "
            f"{self._short:.0f} s of accepting them"
        )
        self.suspect = (
            f"{what}: another client is connected with the MQTT client id "
            f"{self._client_id!r} (two agents with the same [gateway] id, or the same "
            "[mqtt] client_id?); each connection knocks the other off"
        )
        return True
