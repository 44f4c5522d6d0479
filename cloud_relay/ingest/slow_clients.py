"""Deadlines for receiving a request, which uvicorn does not have.

uvicorn's ``timeout_keep_alive`` covers only the idle time between requests, and every byte
received resets it, so a client trickling a request head or body byte by byte holds its
connection (and its share of ``limit_concurrency``) for ever. This HTTP protocol, uvicorn's h11
one plus two timers, closes a connection whose request head is not complete
``header_timeout_seconds`` after the connection opened (or after the first byte of a later
request), or whose body is not complete ``body_timeout_seconds`` after its head. The time the
application takes to answer is not limited, nor is the answer's download.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Literal

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

_TIMEOUT_TEXT = b"the request took too long to arrive"
_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(_TIMEOUT_TEXT), _TIMEOUT_TEXT)
)


def deadline_protocol(header_timeout_seconds: float, body_timeout_seconds: float) -> type[Any]:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` with the two deadlines."""

    class DeadlineH11Protocol(H11Protocol):
        _deadline: asyncio.TimerHandle | None = None
        _phase: Literal["head", "body"] | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm("head", header_timeout_seconds)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._follow_request()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # Idle until the next request: uvicorn's keep-alive timer takes over.
            self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _follow_request(self) -> None:
            """Arm the deadline of whatever part of a request is arriving now."""
            state = self.conn.their_state
            if state is h11.IDLE:
                self._arm("head", header_timeout_seconds)
            elif state is h11.SEND_BODY:
                self._arm("body", body_timeout_seconds)
            else:
                self._disarm()

        def _arm(self, phase: Literal["head", "body"], seconds: float) -> None:
            if self._phase == phase:
                return  # a deadline runs from the start of its part, not from each byte
            self._disarm()
            self._phase = phase
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
            self._deadline = None
            self._phase = None

        def _expired(self) -> None:
            phase = self._phase
            self._deadline = None
            self._phase = None
            if self.transport.is_closing():
                return
            log.info(
                "closing a connection whose request %s did not arrive in time",
                "head" if phase == "head" else "body",
                extra={"client": self.client[0] if self.client else None},
            )
            if self.conn.our_state is h11.IDLE:
                self.transport.write(_TIMEOUT_ANSWER)
            self.transport.close()

    return DeadlineH11Protocol
