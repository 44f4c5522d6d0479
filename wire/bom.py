"""The v1 BOM submission: engineering revisions of products' bills of materials, as a PLM
connector (``POST /v1/boms``) or a person (``cloud-relay bom submit``) hands them to the relay.

A submission carries one or more :class:`BomRevision`; a line whose component names a
``revision`` uses that sub-assembly revision, given in the same submission or published before,
so a multi-level BOM travels (and is published, bottom-up) as one unit. Validation errors are
:class:`~wire.errors.WireValidationError` naming the field (``/revisions/0/lines/3/quantity``).
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from wire.encoding import canonical_json
from wire.errors import WireValidationError

#: The ``format`` every submission names; the version bumps on an incompatible change.
BOM_FORMAT = "plant-link.bom"
BOM_VERSION = 1
BOMS_PATH = "/v1/boms"
#: Bounds that keep one submission a reasonable unit of work.
MAX_REVISIONS = 200
MAX_LINES = 5000
MAX_OPERATIONS = 500

_RFC3339_RE = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)
_REVISION_PART = re.compile(r"\d+|[^\d]+")


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]
Revision = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    ),
]
Quantity = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
Minutes = Annotated[float, BeforeValidator(_not_bool), Field(ge=0, allow_inf_nan=False)]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Plant(_Part):
    """Where a revision applies: an Odoo company (by name) and/or a warehouse (by code or
    name) and its manufacturing operation type (by name)."""

    company: Name | None = None
    warehouse: Name | None = None
    operation_type: Name | None = None

    @model_validator(mode="after")
    def _something(self) -> Plant:
        if not (self.company or self.warehouse or self.operation_type):
            raise ValueError("a plant names a company, a warehouse or an operation type")
        return self


class Operation(_Part):
    """A routing step: its name (unique in the revision), work centre and minutes per cycle."""

    name: Name
    workcenter: Name
    duration_minutes: Minutes = 0.0


class Line(_Part):
    """A component: product (``default_code``), quantity in ``unit`` per the revision's
    quantity, optionally the operation consuming it and, for a sub-assembly, its revision."""

    product: Code
    quantity: Quantity
    unit: Name
    operation: Name | None = None
    revision: Revision | None = None


class BomRevision(_Part):
    """One engineering revision of one product's BOM."""

    product: Code
    revision: Revision
    status: Name
    effective_at: datetime | None = None
    plants: tuple[Plant, ...] = ()
    quantity: Quantity = 1.0
    unit: Name
    type: Literal["normal", "kit"] = "normal"
    lines: Annotated[tuple[Line, ...], Field(min_length=1, max_length=MAX_LINES)]
    operations: Annotated[tuple[Operation, ...], Field(max_length=MAX_OPERATIONS)] = ()

    @field_validator("effective_at", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> Any:
        if isinstance(value, str) and not _RFC3339_RE.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time with offset, e.g. 2024-05-01T06:00:00Z")
        return value

    @field_validator("effective_at")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("must carry a UTC offset (RFC 3339)")
        return value.astimezone(UTC) if value is not None else None

    @property
    def key(self) -> tuple[str, str]:
        """(product, revision): what identifies a revision."""
        return (self.product, self.revision)

    def to_wire(self) -> dict[str, Any]:
        """The JSON-ready mapping, absent optionals left out."""
        data = self.model_dump(mode="json", exclude_none=True)
        if self.effective_at is not None:
            data["effective_at"] = format_time(self.effective_at)
        return data

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of what the revision says (its status excluded: a
        revision moving from one released status to another is the same content)."""
        data = self.to_wire()
        data.pop("status", None)
        return hashlib.sha256(canonical_json(data)).hexdigest()


class BomSubmission(_Part):
    """What one request or one file carries."""

    format: Literal["plant-link.bom"] = "plant-link.bom"
    version: Literal[1] = 1
    revisions: Annotated[tuple[BomRevision, ...], Field(min_length=1, max_length=MAX_REVISIONS)]

    def to_wire(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "version": self.version,
            "revisions": [r.to_wire() for r in self.revisions],
        }

    def encode(self) -> bytes:
        return canonical_json(self.to_wire())


def format_time(value: datetime) -> str:
    """RFC 3339 in UTC with ``Z``."""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def revision_order(revision: str) -> tuple[tuple[int, int, str], ...]:
    """The sort key of revision ids: digit runs compare as numbers, letter runs by length then
    alphabet (``9 < 10``, ``Z < AA``, ``A < B``, ``A.2 < A.10``), case-insensitively."""
    parts: list[tuple[int, int, str]] = []
    for part in _REVISION_PART.findall(revision.upper()):
        if part.isdigit():
            parts.append((0, int(part), ""))
        else:
            parts.append((1, len(part), part))
    return tuple(parts)


_TYPE_TAGS = frozenset({"str", "float", "int", "bool", "none", "datetime", "literal"})


def _pointer(parts: tuple[int | str, ...]) -> str:
    """The JSON pointer of a pydantic ``loc``, without the names of union members."""
    kept = [
        str(p)
        for p in parts
        if isinstance(p, int) or (re.fullmatch(r"[a-z_]+", p) and p not in _TYPE_TAGS)
    ]
    return "".join("/" + p for p in kept)


def parse_submission(value: Any) -> BomSubmission:
    """Validate a decoded JSON value as a :class:`BomSubmission`, naming the first bad field."""
    try:
        return BomSubmission.model_validate(value)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        raise WireValidationError(_pointer(tuple(error["loc"])), error["msg"]) from exc
