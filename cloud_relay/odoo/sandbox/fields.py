"""Field declarations of the sandbox's models and the conversion of scalar values.

A field says how a value is written (``to_stored``) and answered (``to_read``) the way Odoo's
JSON-RPC does it: ``False`` for an empty char or many2one, ``[id, display_name]`` for a
many2one, a list of ids for a one2many or many2many, floats for float fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.errors import PythonValueError

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.env import Env
    from cloud_relay.odoo.sandbox.orm import Model

ALL_VERSIONS = frozenset({17, 18, 19})
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DATE_FORMAT = "%Y-%m-%d"
RELATIONAL = frozenset({"many2one", "one2many", "many2many"})

Compute = Callable[["Model", Mapping[str, Any]], Any]
Default = Callable[["Env", Mapping[str, Any]], Any]


@dataclass(frozen=True)
class Field:
    """One field of a model; ``compute`` makes it a read-time (not stored) field."""

    kind: str
    string: str
    relation: str = ""
    inverse: str = ""
    """For a one2many: the many2one on ``relation`` that points back."""
    selection: tuple[str, ...] = ()
    required: bool = False
    default: Any = None
    """A value, or a callable ``(env, values)`` returning one."""
    compute: Compute | None = None
    """Read-time value ``(model, row) -> value``; the field is then not stored."""
    domain: tuple[Any, ...] = ()
    """For a one2many: extra conditions on the related records (Odoo's field domain)."""
    digits: int | None = None
    versions: frozenset[int] = ALL_VERSIONS
    owner: str = ""
    """Set by the registry: the model that stores the field (differs for inherited fields)."""
    via: str = ""
    """Set by the registry for an inherited field: the many2one to the parent record."""
    search_compute: bool = field(default=False)
    """Whether a computed field may be used in domains (evaluated record by record)."""
    translate: bool = False
    """Whether Odoo stores the field per language (a JSON column; SQL reads its ``en_US``)."""

    @property
    def stored(self) -> bool:
        """Whether the value lives in the row (one2many are always derived)."""
        return self.compute is None and self.kind != "one2many" and not self.via

    def empty(self) -> Any:
        """The stored value of an unset field."""
        if self.kind in ("one2many", "many2many"):
            return []
        if self.kind == "integer":
            return 0
        if self.kind == "float":
            return 0.0
        if self.kind == "boolean":
            return False
        return None


def char(string: str, **options: Any) -> Field:
    """A Char field."""
    return Field("char", string, **options)


def text(string: str, **options: Any) -> Field:
    """A Text field."""
    return Field("text", string, **options)


def integer(string: str, **options: Any) -> Field:
    """An Integer field."""
    return Field("integer", string, **options)


def floating(string: str, **options: Any) -> Field:
    """A Float field."""
    return Field("float", string, **options)


def boolean(string: str, **options: Any) -> Field:
    """A Boolean field."""
    return Field("boolean", string, **options)


def selection(string: str, values: tuple[str, ...], **options: Any) -> Field:
    """A Selection field accepting ``values``."""
    return Field("selection", string, selection=values, **options)


def many2one(relation: str, string: str, **options: Any) -> Field:
    """A Many2one field to ``relation``."""
    return Field("many2one", string, relation=relation, **options)


def one2many(relation: str, inverse: str, string: str, **options: Any) -> Field:
    """A One2many field: the records of ``relation`` whose ``inverse`` points here."""
    return Field("one2many", string, relation=relation, inverse=inverse, **options)


def many2many(relation: str, string: str, **options: Any) -> Field:
    """A Many2many field to ``relation``."""
    return Field("many2many", string, relation=relation, **options)


def datetime_field(string: str, **options: Any) -> Field:
    """A Datetime field (UTC, ``YYYY-MM-DD HH:MM:SS`` on the wire)."""
    return Field("datetime", string, **options)


def date_field(string: str, **options: Any) -> Field:
    """A Date field."""
    return Field("date", string, **options)


def json_field(string: str, **options: Any) -> Field:
    """A field holding any JSON value (wizard line commands kept as sent)."""
    return Field("json", string, **options)


def scalar_to_stored(model: str, name: str, spec: Field, value: Any) -> Any:
    """Convert a written scalar to its stored form, raising Odoo's ``ValueError`` texts."""
    kind = spec.kind
    if kind in ("char", "text"):
        if value is False or value is None:
            return None
        return value if isinstance(value, str) else str(value)
    if kind == "integer":
        return int(value or 0)
    if kind == "float":
        number = float(value or 0.0)
        return round(number, spec.digits) if spec.digits is not None else number
    if kind == "boolean":
        return bool(value)
    if kind == "selection":
        if value is False or value is None:
            return None
        if value not in spec.selection:
            raise PythonValueError(f"Wrong value for {spec.owner or model}.{name}: {value!r}")
        return value
    if kind == "datetime":
        return _to_datetime(value)
    if kind == "date":
        return _to_date(value)
    return value


def _to_datetime(value: Any) -> str | None:
    if value is False or value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT) + " 00:00:00"
    text_value = str(value)
    for parse in (_parse_datetime, _parse_date_only):
        parsed = parse(text_value)
        if parsed is not None:
            return parsed.strftime(DATETIME_FORMAT)
    raise PythonValueError(f"time data {text_value!r} does not match format '{DATETIME_FORMAT}'")


def _to_date(value: Any) -> str | None:
    stored = _to_datetime(value)
    return None if stored is None else stored[:10]


def _parse_datetime(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed
    return parsed.astimezone(UTC).replace(tzinfo=None)


def _parse_date_only(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        return None


def scalar_to_read(spec: Field, value: Any) -> Any:
    """The JSON-RPC form of a stored scalar (``False`` for empty char, selection and dates)."""
    kind = spec.kind
    if kind in ("char", "text", "selection", "datetime", "date"):
        return value if value not in (None, "") else False
    if kind == "integer":
        return int(value or 0)
    if kind == "float":
        return float(value or 0.0)
    if kind == "boolean":
        return bool(value)
    if kind == "json":
        return value if value is not None else False
    return value
