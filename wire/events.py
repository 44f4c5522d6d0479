"""The v1 event types: what a gateway can say happened on the plant floor.

Each type has a data model; :class:`Event` is the envelope every event travels in. Validation
errors are raised as :class:`~wire.errors.WireValidationError` naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from wire.encoding import canonical_json
from wire.errors import WireValidationError
from wire.ids import is_uuid7

EventType = Literal[
    "production.reported",
    "material.consumed",
    "scrap.reported",
    "operation.started",
    "operation.paused",
    "operation.finished",
    "order.completed",
    "inventory.counted",
    "signal.sampled",
]

#: Telemetry is kept at the relay, never posted to Odoo, and may be shed when the queue is full.
TELEMETRY_TYPES: frozenset[str] = frozenset({"signal.sampled"})
#: Everything else changes stock or order state in Odoo and is never dropped.
STOCK_MOVING_TYPES: frozenset[str] = frozenset(
    {
        "production.reported",
        "material.consumed",
        "scrap.reported",
        "operation.started",
        "operation.paused",
        "operation.finished",
        "order.completed",
        "inventory.counted",
    }
)

GATEWAY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_GATEWAY_ID_RE = re.compile(GATEWAY_ID_PATTERN)

#: RFC 3339 date-time with a mandatory offset; other forms pydantic would accept (Unix
#: seconds, naive times) are refused so that the wire has one spelling of a time.
_RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def _not_bool(value: Any) -> Any:
    """Refuse booleans where a number is expected: ``true`` must not count as one piece."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Quantity = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProductionReported(_Data):
    order: Name
    qty: Quantity
    uom: Name | None = None
    lot: Name | None = None
    workcenter: Name | None = None


class MaterialConsumed(_Data):
    order: Name
    product: Name
    qty: Quantity
    uom: Name | None = None
    lot: Name | None = None


class ScrapReported(_Data):
    order: Name | None = None
    product: Name
    qty: Quantity
    uom: Name | None = None
    lot: Name | None = None
    reason: Annotated[str, StringConstraints(max_length=1024)] | None = None


class OperationChanged(_Data):
    order: Name
    operation: Name | None = None
    workcenter: Name | None = None

    @model_validator(mode="after")
    def _operation_or_workcenter(self) -> OperationChanged:
        if self.operation is None and self.workcenter is None:
            raise ValueError("either 'operation' or 'workcenter' is required")
        return self


class OrderCompleted(_Data):
    order: Name
    backorder: bool


class InventoryCounted(_Data):
    product: Name
    location: Name
    qty: Annotated[float, BeforeValidator(_not_bool), Field(ge=0, allow_inf_nan=False)]
    lot: Name | None = None


class SignalSampled(_Data):
    name: Name
    value: (
        Annotated[float, Field(allow_inf_nan=False)]
        | bool
        | Annotated[str, StringConstraints(max_length=1024)]
    )
    unit: Name | None = None


DATA_MODELS: dict[str, type[_Data]] = {
    "production.reported": ProductionReported,
    "material.consumed": MaterialConsumed,
    "scrap.reported": ScrapReported,
    "operation.started": OperationChanged,
    "operation.paused": OperationChanged,
    "operation.finished": OperationChanged,
    "order.completed": OrderCompleted,
    "inventory.counted": InventoryCounted,
    "signal.sampled": SignalSampled,
}


def _pointer(parts: tuple[int | str, ...]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _first_error(exc: ValidationError, prefix: str) -> WireValidationError:
    """The first failing field; for a union field, what each alternative wanted.

    Models here are flat, so the first ``loc`` element is the field; anything after it names
    a union member (``float``, ``str``), which is no part of the document's path.
    """
    errors = [
        (tuple(p for p in e["loc"] if not str(p).startswith("function-"))[:1], e["msg"])
        for e in exc.errors(include_url=False)
    ]
    field = errors[0][0]
    messages = dict.fromkeys(msg for loc, msg in errors if loc == field)
    return WireValidationError(prefix + _pointer(field), "; or ".join(messages))


def validate_data(
    event_type: str, data: Mapping[str, Any], location: str = "/data"
) -> dict[str, Any]:
    """Validate ``data`` for ``event_type`` and return it normalised (absent optionals dropped)."""
    model = DATA_MODELS.get(event_type)
    if model is None:
        raise WireValidationError(
            location.rsplit("/", 1)[0] + "/type", f"unknown event type {event_type!r}"
        )
    try:
        parsed = model.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, location) from exc
    return parsed.model_dump(exclude_none=True)


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` and microseconds, the one form timestamps take on the wire."""
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class _EventModel(BaseModel):
    """Validation of one event; :class:`Event` is what callers get back."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    gateway_id: str
    seq: Annotated[int, Field(ge=1, strict=True)]
    type: EventType
    occurred_at: datetime
    source: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    data: dict[str, Any]

    @field_validator("id")
    @classmethod
    def _id_is_uuid7(cls, value: str) -> str:
        if not is_uuid7(value):
            raise ValueError("must be a canonical lower-case UUIDv7")
        return value

    @field_validator("gateway_id")
    @classmethod
    def _gateway_id_shape(cls, value: str) -> str:
        if not _GATEWAY_ID_RE.fullmatch(value):
            raise ValueError(f"must match {GATEWAY_ID_PATTERN}")
        return value

    @field_validator("occurred_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if isinstance(value, str) and not _RFC3339_RE.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time with offset, e.g. 2024-05-01T10:00:00Z")
        if not isinstance(value, str | datetime):
            raise ValueError("must be an RFC 3339 date-time string")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset (RFC 3339)")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _data_matches_type(self) -> _EventModel:
        normalised = validate_data(self.type, self.data)
        object.__setattr__(self, "data", normalised)
        return self


@dataclass(frozen=True, slots=True)
class Event:
    """One plant-floor event, as it is queued, uploaded and stored (always valid when made by
    :func:`parse_event`, :meth:`model_validate` or :func:`parse_events_fast`)."""

    id: str
    gateway_id: str
    seq: int
    type: str
    occurred_at: datetime
    source: str
    data: dict[str, Any]

    @classmethod
    def model_validate(cls, value: Any) -> Event:
        """Validate a decoded JSON value (same as :func:`parse_event`)."""
        return parse_event(value)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready mapping of this event."""
        return {
            "data": self.data,
            "gateway_id": self.gateway_id,
            "id": self.id,
            "occurred_at": format_timestamp(self.occurred_at),
            "seq": self.seq,
            "source": self.source,
            "type": self.type,
        }

    def encode(self) -> bytes:
        """Canonical JSON bytes of this event."""
        return canonical_json(self.to_wire())


_event_adapter: TypeAdapter[_EventModel] = TypeAdapter(_EventModel)


def parse_event(value: Any, location: str = "") -> Event:
    """Validate a decoded JSON value as an :class:`Event`, naming the field on failure."""
    try:
        model = _event_adapter.validate_python(value)
    except WireValidationError as exc:
        raise WireValidationError(location + exc.location, exc.message) from exc
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        ctx_exc = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_exc, WireValidationError):
            raise WireValidationError(location + ctx_exc.location, ctx_exc.message) from exc
        raise _first_error(exc, location) from exc
    return Event(
        model.id,
        model.gateway_id,
        model.seq,
        model.type,
        model.occurred_at,
        model.source,
        model.data,
    )


# --- Fast path -------------------------------------------------------------------------------
# A relay checks thousands of events a second. The models below check the same rules as
# :class:`Event` entirely inside pydantic-core (no Python validators), strictly; when they accept
# a list of events, the events are built without validating again. When they refuse, the caller
# falls back to :func:`parse_event`, which names the field and decides what is acceptable.

_UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_StrictQty = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
_StrictCount = Annotated[float, Field(strict=True, ge=0, allow_inf_nan=False)]
_StrictName = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _FastProduction(_Strict):
    order: _StrictName
    qty: _StrictQty
    uom: _StrictName | None = None
    lot: _StrictName | None = None
    workcenter: _StrictName | None = None


class _FastConsumed(_Strict):
    order: _StrictName
    product: _StrictName
    qty: _StrictQty
    uom: _StrictName | None = None
    lot: _StrictName | None = None


class _FastScrap(_Strict):
    order: _StrictName | None = None
    product: _StrictName
    qty: _StrictQty
    uom: _StrictName | None = None
    lot: _StrictName | None = None
    reason: Annotated[str, StringConstraints(max_length=1024)] | None = None


class _FastOperation(_Strict):
    order: _StrictName
    operation: _StrictName | None = None
    workcenter: _StrictName | None = None


class _FastCompleted(_Strict):
    order: _StrictName
    backorder: bool


class _FastCounted(_Strict):
    product: _StrictName
    location: _StrictName
    qty: _StrictCount
    lot: _StrictName | None = None


class _FastSample(_Strict):
    name: _StrictName
    value: (
        bool
        | Annotated[float, Field(strict=True, allow_inf_nan=False)]
        | Annotated[str, StringConstraints(max_length=1024)]
    )
    unit: _StrictName | None = None


class _FastEnvelope(_Strict):
    id: Annotated[str, StringConstraints(pattern=_UUID7_PATTERN)]
    gateway_id: Annotated[str, StringConstraints(pattern=GATEWAY_ID_PATTERN)]
    seq: Annotated[int, Field(ge=1)]
    occurred_at: Annotated[str, StringConstraints(pattern=_RFC3339_RE.pattern)]
    source: Annotated[str, StringConstraints(min_length=1, max_length=512)]


def _fast_event(type_name: str, data_model: type[_Strict]) -> type[_FastEnvelope]:
    return type(
        f"_Fast_{type_name.replace('.', '_')}",
        (_FastEnvelope,),
        {
            "__annotations__": {"type": Literal[type_name], "data": data_model},
            "__module__": __name__,
        },
    )


_FAST_DATA: dict[str, type[_Strict]] = {
    "production.reported": _FastProduction,
    "material.consumed": _FastConsumed,
    "scrap.reported": _FastScrap,
    "operation.started": _FastOperation,
    "operation.paused": _FastOperation,
    "operation.finished": _FastOperation,
    "order.completed": _FastCompleted,
    "inventory.counted": _FastCounted,
    "signal.sampled": _FastSample,
}
_FAST_EVENTS = tuple(_fast_event(name, model) for name, model in _FAST_DATA.items())
_FastEvent = Union.__getitem__(_FAST_EVENTS)
_fast_adapter: TypeAdapter[list[Any]] = TypeAdapter(
    list[Annotated[_FastEvent, Field(discriminator="type")]]  # type: ignore[valid-type]
)


_FREE_TEXT = frozenset({"reason", "value"})  # data fields that are not names: never stripped


def parse_events_fast(values: list[Any]) -> list[Event] | None:
    """Validate many decoded events at once; ``None`` when any of them needs a closer look."""
    try:
        checked = _fast_adapter.validate_python(values)
    except ValidationError:
        return None
    events: list[Event] = []
    for item in checked:
        data = item.data.model_dump(exclude_none=True)
        if (
            isinstance(item.data, _FastOperation)
            and item.data.operation is None
            and (item.data.workcenter is None)
        ):
            return None
        if any(
            isinstance(v, str) and v != v.strip() and k not in _FREE_TEXT for k, v in data.items()
        ):
            return None  # names are stripped by the full validation: let it normalise them
        events.append(
            Event(
                item.id,
                item.gateway_id,
                item.seq,
                item.type,
                datetime.fromisoformat(item.occurred_at).astimezone(UTC),
                item.source,
                data,
            )
        )
    return events
