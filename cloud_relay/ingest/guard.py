"""A bearer token in front of ``/metrics`` and ``/openapi.json`` when the relay is reachable
from beyond its own machine.

Both name every gateway and its ack point. On a loopback listener (and no proxy in front) they
stay open, as a local Prometheus expects; otherwise a request needs ``Authorization: Bearer``
with the metrics token or the admin token, and wrong tokens count towards the same per-client
lockout as the admin API's.
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from cloud_relay.admin.throttle import GuessThrottle

log = logging.getLogger(__name__)

#: The routes guarded.
GUARDED_PATHS = frozenset({"/metrics", "/openapi.json"})


class OperationsGuard:
    """ASGI middleware refusing guarded routes without one of ``tokens`` (when ``required``)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        required: bool,
        tokens: tuple[str, ...],
        throttle: GuessThrottle,
    ) -> None:
        self._app = app
        self._required = required
        self._tokens = tuple(token.encode() for token in tokens)
        self._throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._required or scope["path"] not in GUARDED_PATHS:
            await self._app(scope, receive, send)
            return
        client = scope["client"][0] if scope.get("client") else "unknown"
        wait = self._throttle.wait_seconds(client)
        if wait:
            await _refuse(send, 429, "too many wrong tokens from this address", wait)
            return
        if self._allowed(scope):
            self._throttle.succeeded(client)
            await self._app(scope, receive, send)
            return
        if _authorization(scope) is not None:
            self._throttle.failed(client, scope["path"])
        log.info("%s refused: no valid bearer token", scope["path"], extra={"client": client})
        await _refuse(send, 401, f"{scope['path']} needs a bearer token (metrics or admin)")

    def _allowed(self, scope: Scope) -> bool:
        authorization = _authorization(scope)
        if authorization is None:
            return False
        scheme, _, offered = authorization.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        offered = offered.strip()
        # Every token compared, so timing tells nothing about which one nearly matched.
        matches = [hmac.compare_digest(offered, token) for token in self._tokens]
        return any(matches)


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return bytes(value)
    return None


async def _refuse(send: Send, status: int, message: str, retry_after: int | None = None) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
