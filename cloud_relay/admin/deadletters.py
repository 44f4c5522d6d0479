"""Admin routes for dead letters, their audit log and the orders the writer holds back.

The router carries no auth of its own: :func:`cloud_relay.admin.api.install_admin_api` mounts
it behind the admin bearer token like every other admin route. Without a posting store (no
Odoo writer configured) each route answers 503.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator
from starlette.convertors import Convertor, register_url_convertor

from cloud_relay.admin.api import AdminRefusal
from cloud_relay.deadletters import service
from cloud_relay.deadletters.service import (
    DeadLetterNotDead,
    DeadLetterNotFound,
    InvalidRequest,
    ListStatus,
)
from cloud_relay.posting.store import PostingStore
from cloud_relay.responses import ErrorResponse

#: Most audit entries one request returns.
MAX_AUDIT_ENTRIES = 1000
#: Most orders ``GET /v1/orders`` returns.
MAX_ORDERS = 1000
#: Added to the actor a request names, so the audit log tells the API from the CLI.
ACTOR_SUFFIX = " (admin api)"

_MAX_ID = 2**63 - 1

StoreProvider = Callable[[], PostingStore | None]
T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DeadLetterOut(_Model):
    """A dead letter; ``event`` is the stored event, ``raw_body`` its bytes when unreadable."""

    id: int
    status: Literal["dead", "replayed", "discarded"]
    order_key: str
    order: str | None
    type: str
    event_id: str
    gateway_id: str
    seq: int
    occurred_at: datetime
    error: str
    failed_since: datetime
    attempts: int
    dead_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    event: dict[str, Any] | None
    raw_body: str | None


class DeadLettersOut(_Model):
    """Dead letters, oldest first."""

    dead_letters: list[DeadLetterOut]


class ReplayedOut(_Model):
    """A dead letter whose event is queued again."""

    id: int
    order_key: str
    event_id: str


class SkippedOut(_Model):
    """A dead letter not replayed, and why."""

    id: int
    reason: Literal["not found", "already replayed", "discarded"]


class ReplayOut(_Model):
    """What a replay did."""

    replayed: list[ReplayedOut]
    skipped: list[SkippedOut]


class AuditEntryOut(_Model):
    """One replay or discard: who, when and why."""

    id: int
    at: datetime
    actor: str
    action: Literal["replay", "discard"]
    dead_letter_id: int
    order_key: str
    event_id: str
    reason: str | None


class AuditOut(_Model):
    """Audit entries, newest first."""

    entries: list[AuditEntryOut]


class OrderOut(_Model):
    """An order's posting state: parked orders wait for ``next_attempt_at``."""

    key: str
    parked: bool
    reason: str | None
    parked_since: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    pending: int
    updated_at: datetime | None


class OrdersOut(_Model):
    """Order states."""

    orders: list[OrderOut]


def _required(what: str) -> Callable[[str], str]:
    """A validator applying the service's text rules, so a bad body is a 422 before any work."""

    def check(value: str) -> str:
        try:
            service.required_text(value, what)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from exc
        return value

    return check


def _optional(what: str) -> Callable[[str | None], str | None]:
    def check(value: str | None) -> str | None:
        try:
            service.optional_text(value, what)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from exc
        return value

    return check


Actor = Annotated[
    str,
    Field(min_length=1, max_length=200, description="Who acts; recorded with ' (admin api)'."),
    AfterValidator(_required("actor")),
]
Reason = Annotated[str, Field(min_length=1, max_length=2000)]
OptionalReason = Annotated[Reason | None, AfterValidator(_optional("reason"))]


class _Request(_Model):
    # Strict, so ``"all": 0`` is refused rather than read as false.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ReplayOne(_Request):
    """Replay one dead letter."""

    actor: Actor
    reason: OptionalReason = None


class ReplayMany(_Request):
    """Replay the dead letters of one order, or all of them: exactly one of ``order``, ``all``."""

    actor: Actor
    order: (
        Annotated[
            str,
            Field(
                min_length=1,
                max_length=300,
                description="An MO name or a full order key (``scrap:…``, ``inventory:…``).",
            ),
            AfterValidator(_required("order")),
        ]
        | None
    ) = None
    all: bool = False
    reason: OptionalReason = None

    @model_validator(mode="after")
    def _one_target(self) -> ReplayMany:
        if (self.order is not None) == self.all:
            raise ValueError("give exactly one of order and all")
        return self


class Discard(_Request):
    """Discard one dead letter; the reason is required."""

    actor: Actor
    reason: Annotated[Reason, AfterValidator(_required("reason"))]


class BodyNotReadable(_Model):
    """400: the body is not text FastAPI can parse (say, not UTF-8)."""

    detail: str


_UNAVAILABLE = "No admin token configured, no Odoo writer configured, or the store is unreachable."
_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorResponse, "description": "No such dead letter."}
}
_BAD_BODY: dict[int | str, dict[str, Any]] = {
    400: {"model": BodyNotReadable, "description": "The body cannot be read."}
}
_NOT_DEAD: dict[int | str, dict[str, Any]] = {
    **_NOT_FOUND,
    **_BAD_BODY,
    409: {"model": ErrorResponse, "description": "Already replayed or discarded."},
}


class _DeadLetterIdSegment(Convertor[str]):
    """A path segment that may be a dead letter id: anything but ``replay``, so that
    ``/v1/deadletters/replay`` is only the replay route (405 for GET) and ``/v1/deadletters/x``
    is a 422 from the id's validation rather than an unknown path."""

    regex = "(?!replay$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("dead_letter_id", _DeadLetterIdSegment())

DeadLetterId = Annotated[int, Path(ge=1, le=_MAX_ID, description="The dead letter's id.")]


def deadletters_router(store_provider: StoreProvider) -> APIRouter:
    """The dead-letter, audit and order routes over the posting store ``store_provider`` gives
    (None: answer 503)."""
    router = APIRouter(
        tags=["dead letters"],
        responses={503: {"model": ErrorResponse, "description": _UNAVAILABLE}},
    )

    def store() -> PostingStore:
        posting = store_provider()
        if posting is None:
            raise AdminRefusal(503, "no Odoo writer configured")
        return posting

    @router.get("/v1/deadletters", summary="List dead letters")
    async def list_dead_letters(
        status: Annotated[ListStatus, Query(description="``all`` for every status.")] = "dead",
        order: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=300,
                description="An MO name or a full order key (``scrap:…``, ``inventory:…``).",
            ),
        ] = None,
    ) -> DeadLettersOut:
        try:
            letters = await service.list_dead(store(), status=status, order=order)
        except InvalidRequest as exc:
            raise _invalid(("query", "order"), order, exc) from exc
        return DeadLettersOut.model_validate(
            {"dead_letters": [service.dead_letter_dict(letter) for letter in letters]}
        )

    @router.post(
        "/v1/deadletters/replay",
        summary="Replay the dead letters of one order, or all",
        responses=_BAD_BODY,
        response_description="Replayed and skipped dead letters.",
    )
    async def replay_many(body: ReplayMany) -> ReplayOut:
        result = await _act(
            service.replay(
                store(),
                order=body.order,
                all_=body.all,
                actor=body.actor.strip() + ACTOR_SUFFIX,
                reason=body.reason,
            )
        )
        return ReplayOut.model_validate(service.replay_result_dict(result))

    @router.get(
        "/v1/deadletters/{dead_letter_id:dead_letter_id}",
        summary="One dead letter",
        responses=_NOT_FOUND,
    )
    async def get_dead_letter(dead_letter_id: DeadLetterId) -> DeadLetterOut:
        letter = await store().get_dead_letter(dead_letter_id)
        if letter is None:
            raise _refusal(DeadLetterNotFound(dead_letter_id))
        return DeadLetterOut.model_validate(service.dead_letter_dict(letter))

    @router.post(
        "/v1/deadletters/{dead_letter_id:dead_letter_id}/replay",
        summary="Replay one dead letter: its event goes to the end of its order's queue",
        responses=_NOT_DEAD,
    )
    async def replay_one(dead_letter_id: DeadLetterId, body: ReplayOne) -> DeadLetterOut:
        posting = store()
        result = await _act(
            service.replay(
                posting,
                ids=[dead_letter_id],
                actor=body.actor.strip() + ACTOR_SUFFIX,
                reason=body.reason,
            )
        )
        letter = await posting.get_dead_letter(dead_letter_id)
        if letter is None:
            raise _refusal(DeadLetterNotFound(dead_letter_id))
        if not result.replayed:
            raise _refusal(DeadLetterNotDead(letter))
        return DeadLetterOut.model_validate(service.dead_letter_dict(letter))

    @router.post(
        "/v1/deadletters/{dead_letter_id:dead_letter_id}/discard",
        summary="Discard one dead letter without posting it",
        responses=_NOT_DEAD,
    )
    async def discard(dead_letter_id: DeadLetterId, body: Discard) -> DeadLetterOut:
        letter = await _act(
            service.discard(
                store(), dead_letter_id, actor=body.actor.strip() + ACTOR_SUFFIX, reason=body.reason
            )
        )
        return DeadLetterOut.model_validate(service.dead_letter_dict(letter))

    @router.get("/v1/audit", summary="Replays and discards, newest first")
    async def audit_log(
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_ENTRIES)] = 200,
    ) -> AuditOut:
        entries = await store().audit_log(limit)
        return AuditOut.model_validate({"entries": [service.audit_dict(e) for e in entries]})

    @router.get("/v1/orders", summary="Order posting states")
    async def orders(
        parked: Annotated[
            bool, Query(description="Only parked orders (longest parked first).")
        ] = False,
    ) -> OrdersOut:
        posting = store()
        states = await (posting.parked_orders() if parked else posting.orders(MAX_ORDERS))
        return OrdersOut.model_validate(
            {"orders": [service.order_state_dict(state) for state in states]}
        )

    return router


async def _act(action: Awaitable[T]) -> T:
    try:
        return await action
    except (DeadLetterNotFound, DeadLetterNotDead) as exc:
        raise _refusal(exc) from exc
    except InvalidRequest as exc:
        raise _invalid(("body",), None, exc) from exc


def _refusal(exc: DeadLetterNotFound | DeadLetterNotDead) -> AdminRefusal:
    return AdminRefusal(404 if isinstance(exc, DeadLetterNotFound) else 409, str(exc))


def _invalid(loc: tuple[str, ...], value: Any, exc: InvalidRequest) -> RequestValidationError:
    """A 422 in FastAPI's own shape, like every other bad request to the admin API."""
    return RequestValidationError(
        [{"type": "value_error", "loc": loc, "msg": str(exc), "input": value}]
    )
