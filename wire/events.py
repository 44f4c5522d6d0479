"""The v1 event types: what a gateway can say happened on the plant floor.

Each type has a data model; :class:`Event` is the envelope every event travels in. Validation
errors are raised as :class:`~wire.errors.WireValidationError` naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_serializer,
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

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Quantity = Annotated[float, Field(gt=0, allow_inf_nan=False)]


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
    qty: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    lot: Name | None = None


class SignalSampled(_Data):
    name: Name
    value: Annotated[float, Field(allow_inf_nan=False)] | bool | Annotated[
        str, StringConstraints(max_length=1024)
    ]
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
    err = exc.errors(include_url=False)[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    return WireValidationError(prefix + _pointer(loc), err["msg"])


def validate_data(event_type: str, data: Mapping[str, Any], location: str = "/data") -> dict[str, Any]:
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
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Event(BaseModel):
    """One plant-floor event, as it is queued, uploaded and stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    gateway_id: str
    seq: Annotated[int, Field(ge=1)]
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
        if not _GATEWAY_ID_RE.match(value):
            raise ValueError(f"must match {GATEWAY_ID_PATTERN}")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _aware_utc(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("must carry a UTC offset (RFC 3339)")
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _data_matches_type(self) -> Event:
        normalised = validate_data(self.type, self.data)
        object.__setattr__(self, "data", normalised)
        return self

    @field_serializer("occurred_at")
    def _serialize_time(self, value: datetime) -> str:
        return format_timestamp(value)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready mapping of this event."""
        return self.model_dump(mode="json")

    def encode(self) -> bytes:
        """Canonical JSON bytes of this event."""
        return canonical_json(self.to_wire())


_event_adapter: TypeAdapter[Event] = TypeAdapter(Event)


def parse_event(value: Any, location: str = "") -> Event:
    """Validate a decoded JSON value as an :class:`Event`, naming the field on failure."""
    try:
        return _event_adapter.validate_python(value)
    except WireValidationError as exc:
        raise WireValidationError(location + exc.location, exc.message) from exc
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        ctx_exc = (err.get("ctx") or {}).get("error")
        if isinstance(ctx_exc, WireValidationError):
            raise WireValidationError(location + ctx_exc.location, ctx_exc.message) from exc
        raise _first_error(exc, location) from exc
