"""The admin API: gateways, their keys and ack points, and an audit view of stored events.

Every route needs ``Authorization: Bearer <admin token>``. Without a configured token the API
answers 503 rather than opening up.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_relay.admin.throttle import GuessThrottle, client_of
from cloud_relay.inbox.store import GatewayInfo, InboxStore, StoredEvent
from cloud_relay.responses import RETRY_AFTER_HEADER, ErrorResponse
from wire.events import GATEWAY_ID_PATTERN

log = logging.getLogger(__name__)

#: Most events one audit page returns; a larger ``limit`` is capped to this.
MAX_EVENTS_PER_PAGE = 1000
_MAX_SEQ = 2**63 - 1


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class KeyOut(_Out):
    """A registered public key."""

    key_id: str
    public_key_pem: str
    added_at: datetime
    revoked_at: datetime | None


class GatewayOut(_Out):
    """A gateway, its ack point and keys."""

    gateway_id: str
    acked_seq: int
    last_seen_at: datetime | None
    keys: list[KeyOut]


class EventOut(_Out):
    """A stored event with its audit fields; ``event`` is the event as stored."""

    seq: int
    id: str
    type: str
    occurred_at: datetime
    received_at: datetime
    key_id: str
    event: dict[str, Any]


class EventsPage(_Out):
    """Events after ``after_seq``, in seq order; ask again with ``next_after_seq`` for more."""

    gateway_id: str
    events: list[EventOut]
    next_after_seq: int


class AdminRefusal(Exception):
    """An admin request answered with an error: 401 unauthorised, 404 unknown gateway or dead
    letter, 409 dead letter already resolved, 429 too many wrong tokens, 503 API not set up."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "model": ErrorResponse,
        "description": "Missing or wrong bearer token.",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    429: {
        "model": ErrorResponse,
        "description": "Too many wrong tokens from this address: locked out for a while.",
        "headers": RETRY_AFTER_HEADER,
    },
    503: {
        "model": ErrorResponse,
        "description": "No admin token configured, or the inbox is unreachable.",
        "headers": RETRY_AFTER_HEADER,
    },
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such gateway."}
}

_bearer = HTTPBearer(auto_error=False, description="The relay's admin token.")

GatewayId = Annotated[str, Path(pattern=GATEWAY_ID_PATTERN, description="The gateway's id.")]


def install_admin_api(
    app: FastAPI,
    store: InboxStore,
    token: str | None,
    *,
    routers: Sequence[APIRouter] = (),
    throttle: GuessThrottle | None = None,
) -> None:
    """Add the admin routes and their error answers to ``app``; ``routers`` (dead letters, say)
    are mounted behind the same bearer token, and wrong tokens are throttled per client."""
    require = require_admin(token, throttle or GuessThrottle())
    app.add_middleware(NoSniff)
    app.include_router(_router(store, require))
    for router in routers:
        app.include_router(router, dependencies=[Depends(require)], responses=_ADMIN_ERRORS)

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, AdminRefusal)
        headers: dict[str, str] = {}
        if exc.status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if exc.retry_after is not None:
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"error": str(exc)}, exc.status, headers=headers)

    app.add_exception_handler(AdminRefusal, refused)


class NoSniff:
    """ASGI middleware: every answer says ``X-Content-Type-Options: nosniff``, so a browser
    never reads admin JSON (which quotes what gateways sent) as HTML or script."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_nosniff(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() != b"x-content-type-options"
                ]
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_nosniff)


RequireAdmin = Callable[[Request, HTTPAuthorizationCredentials | None], None]


def require_admin(token: str | None, throttle: GuessThrottle) -> RequireAdmin:
    expected = token.encode() if token else None

    def require_admin(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> None:
        if expected is None:
            raise AdminRefusal(503, "admin token not configured")
        client = client_of(request)
        wait = throttle.wait_seconds(client)
        if wait:
            raise AdminRefusal(
                429,
                f"too many wrong admin tokens from this address; retry in {wait} s",
                retry_after=wait,
            )
        offered = credentials.credentials.encode() if credentials else b""
        if not hmac.compare_digest(offered, expected):
            log.warning("admin API: request without a valid bearer token")
            if credentials is not None:  # a wrong token is a guess; none at all is not
                throttle.failed(client, request.url.path)
            raise AdminRefusal(401, "a valid bearer token is required")
        throttle.succeeded(client)

    return require_admin


def _router(store: InboxStore, require: RequireAdmin) -> APIRouter:
    router = APIRouter(
        prefix="/v1/gateways",
        tags=["admin"],
        dependencies=[Depends(require)],
        responses=_ADMIN_ERRORS,
    )

    @router.get("", summary="List gateways")
    async def list_gateways() -> list[GatewayOut]:
        return [_gateway_out(info) for info in await store.list_gateways()]

    @router.get("/{gateway_id}", summary="One gateway", responses=_NOT_FOUND)
    async def get_gateway(gateway_id: GatewayId) -> GatewayOut:
        info = await store.get_gateway(gateway_id)
        if info is None:
            raise _not_found(gateway_id)
        return _gateway_out(info)

    @router.get("/{gateway_id}/events", summary="Stored events (audit)", responses=_NOT_FOUND)
    async def list_events(
        gateway_id: GatewayId,
        after_seq: Annotated[int, Query(ge=0, le=_MAX_SEQ)] = 0,
        limit: Annotated[
            int, Query(ge=1, le=_MAX_SEQ, description=f"At most {MAX_EVENTS_PER_PAGE} returned.")
        ] = 100,
    ) -> EventsPage:
        if await store.get_gateway(gateway_id) is None:
            raise _not_found(gateway_id)
        stored = await store.events_after(gateway_id, after_seq, min(limit, MAX_EVENTS_PER_PAGE))
        return EventsPage(
            gateway_id=gateway_id,
            events=[_event_out(event) for event in stored],
            next_after_seq=stored[-1].seq if stored else after_seq,
        )

    return router


def _not_found(gateway_id: str) -> AdminRefusal:
    return AdminRefusal(404, f"no gateway {gateway_id!r}")


def _gateway_out(info: GatewayInfo) -> GatewayOut:
    return GatewayOut(
        gateway_id=info.gateway_id,
        acked_seq=info.acked_seq,
        last_seen_at=info.last_seen_at,
        keys=[
            KeyOut(
                key_id=k.key_id,
                public_key_pem=k.public_key_pem,
                added_at=k.added_at,
                revoked_at=k.revoked_at,
            )
            for k in info.keys
        ],
    )


def _event_out(event: StoredEvent) -> EventOut:
    return EventOut(
        seq=event.seq,
        id=event.id,
        type=event.type,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        key_id=event.key_id,
        event=json.loads(event.body),
    )
