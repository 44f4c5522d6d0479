"""The v1 event types: what a gateway can say happened on the plant floor.

Each type has a data model; :class:`Event` is the envelope every event travels in. Validation
errors are raised as :class:`~wire.errors.WireValidationError` naming the offending field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

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
    "stock.transferred",
    "stock.received",
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
        "stock.transferred",
        "stock.received",
    }
)

GATEWAY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
#: Largest ``seq`` (and ``first_seq``/``last_seq``): a signed 64-bit integer, what both inboxes
#: store; a larger number could never be stored, so it is invalid on the wire.
MAX_SEQ = 2**63 - 1
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


Text = Annotated[str, StringConstraints(max_length=1024)]


class StockTransferred(_Data):
    """Stock moved between two locations (full Odoo name or barcode); a quality hold or
    release is a transfer to or from a quarantine location with a ``reason``."""

    product: Name
    qty: Quantity
    uom: Name | None = None
    from_location: Name
    to_location: Name
    lot: Name | None = None
    reference: Name | None = None
    operation_type: Name | None = None
    reason: Text | None = None


class StockReceived(_Data):
    """Finished goods or components received into a location (from a vendor)."""

    product: Name
    qty: Quantity
    uom: Name | None = None
    location: Name
    lot: Name | None = None
    reference: Name | None = None
    operation_type: Name | None = None
    reason: Text | None = None


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
    "stock.transferred": StockTransferred,
    "stock.received": StockReceived,
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
    seq: Annotated[int, Field(ge=1, le=MAX_SEQ, strict=True)]
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
        try:
            return value.astimezone(UTC)
        except OverflowError:
            # 0001-01-01T00:00:00+01:00 is a valid RFC 3339 time, but not one in years 1-9999 UTC.
            raise ValueError("is outside years 0001-9999 once converted to UTC") from None

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
# A relay checks thousands of events a second. The schema below checks the same rules as
# :class:`Event` entirely inside pydantic-core, strictly, and only for events already in their
# normal form: what :meth:`Event.to_wire` of the result gives back, type for type (floats where
# a number is expected, no ``null`` optionals, names without padding, the canonical timestamp).
# Such an event's canonical JSON is its ``Event.encode()``. Anything else makes the caller fall
# back to :func:`parse_event`, which names the field and decides what is acceptable.

_UUID7_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
#: ``format_timestamp``'s output; any other spelling of a time takes the full validation.
_CANONICAL_TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}Z$"
#: A name the full validation would not strip (its strip is Unicode White_Space; the class below
#: also keeps out what Python's ``str.isspace`` calls space).
_UNPADDED_PATTERN = r"^[^\s\x1c-\x1f](?:[\s\S]*[^\s\x1c-\x1f])?$"


def _fields(
    required: dict[str, cs.CoreSchema], optional: dict[str, cs.CoreSchema]
) -> cs.CoreSchema:
    fields = {k: cs.typed_dict_field(v, required=True) for k, v in required.items()}
    fields.update({k: cs.typed_dict_field(v, required=False) for k, v in optional.items()})
    return cs.typed_dict_schema(fields, extra_behavior="forbid", strict=True)


def _fast_data_schemas(from_json: bool) -> dict[str, cs.CoreSchema]:
    def number(*, gt: float | None = None, ge: float | None = None) -> cs.CoreSchema:
        checked = cs.float_schema(gt=gt, ge=ge, allow_inf_nan=False, strict=True)
        # An integer where a number is expected becomes a float, which changes its canonical
        # bytes, so only a float is normal. JSON input cannot be asked ``isinstance``: there
        # the caller compares the canonical bytes of the result with the input instead.
        return checked if from_json else cs.chain_schema([cs.is_instance_schema(float), checked])

    name = cs.str_schema(min_length=1, max_length=256, pattern=_UNPADDED_PATTERN, strict=True)
    text = cs.str_schema(max_length=1024, strict=True)
    qty = number(gt=0)
    operation = cs.union_schema(
        [
            _fields({"order": name, "operation": name}, {"workcenter": name}),
            _fields({"order": name, "workcenter": name}, {"operation": name}),
        ],
        mode="left_to_right",
    )
    value = cs.union_schema([cs.bool_schema(strict=True), number(), text], mode="left_to_right")
    stock_optional = {"uom": name, "reference": name, "operation_type": name, "reason": text}
    return {
        "production.reported": _fields(
            {"order": name, "qty": qty}, {"uom": name, "lot": name, "workcenter": name}
        ),
        "material.consumed": _fields(
            {"order": name, "product": name, "qty": qty}, {"uom": name, "lot": name}
        ),
        "scrap.reported": _fields(
            {"product": name, "qty": qty},
            {"order": name, "uom": name, "lot": name, "reason": text},
        ),
        "operation.started": operation,
        "operation.paused": operation,
        "operation.finished": operation,
        "order.completed": _fields({"order": name, "backorder": cs.bool_schema(strict=True)}, {}),
        "inventory.counted": _fields(
            {"product": name, "location": name, "qty": number(ge=0)}, {"lot": name}
        ),
        "stock.transferred": _fields(
            {"product": name, "qty": qty, "from_location": name, "to_location": name},
            {**stock_optional, "lot": name},
        ),
        "stock.received": _fields(
            {"product": name, "qty": qty, "location": name}, {**stock_optional, "lot": name}
        ),
        "signal.sampled": _fields({"name": name, "value": value}, {"unit": name}),
    }


def fast_events_schema(*, from_json: bool = False) -> cs.CoreSchema:
    """A list of events in normal form, for pydantic-core (see the note above).

    With ``from_json`` an integer is taken where a float belongs (and comes out a float): the
    caller must then prove normal form by comparing canonical bytes with the input.
    """
    envelope = {
        "id": cs.str_schema(pattern=_UUID7_PATTERN, strict=True),
        "gateway_id": cs.str_schema(pattern=GATEWAY_ID_PATTERN, strict=True),
        "seq": cs.int_schema(ge=1, le=MAX_SEQ, strict=True),
        "occurred_at": cs.str_schema(pattern=_CANONICAL_TIME_PATTERN, strict=True),
        "source": cs.str_schema(min_length=1, max_length=512, strict=True),
    }
    choices = {
        name: _fields({**envelope, "type": cs.literal_schema([name]), "data": data}, {})
        for name, data in _fast_data_schemas(from_json).items()
    }
    return cs.list_schema(cs.tagged_union_schema(choices, discriminator="type"), strict=True)


def events_in_normal_form(values: list[dict[str, Any]]) -> list[Event] | None:
    """Events from values :func:`fast_events_schema` accepted; ``None`` for a date the pattern
    lets through but the calendar does not (``2025-02-30``)."""
    # Filling the slots directly skips the frozen dataclass's seven object.__setattr__ calls,
    # half the cost of an event here; the values are checked already and Event has no
    # __post_init__. The fast-path tests compare these events with parse_event's.
    new = object.__new__
    id_, gateway_id, seq, type_, occurred_at, source, data = _EVENT_SLOTS
    parse_time = datetime.fromisoformat
    events: list[Event] = []
    try:
        for v in values:
            event = new(Event)
            id_(event, v["id"])
            gateway_id(event, v["gateway_id"])
            seq(event, v["seq"])
            type_(event, v["type"])
            occurred_at(event, parse_time(v["occurred_at"]))
            source(event, v["source"])
            data(event, v["data"])
            events.append(event)
    except ValueError:
        return None
    return events


_EVENT_SLOTS: tuple[Callable[[Event, Any], None], ...] = tuple(
    getattr(Event, name).__set__
    for name in ("id", "gateway_id", "seq", "type", "occurred_at", "source", "data")
)

_fast_validator = SchemaValidator(fast_events_schema())


def parse_events_fast(values: list[Any]) -> list[Event] | None:
    """Validate many decoded events at once; ``None`` when any of them needs a closer look.

    Every event returned was already in normal form, so ``canonical_json(value)`` of its
    decoded value is its :meth:`Event.encode`.
    """
    try:
        _fast_validator.validate_python(values)
    except ValidationError:
        return None
    return events_in_normal_form(values)
