"""How written values become stored rows: unknown fields, conversion by kind, many2one checks,
defaults and the NOT NULL message, as Odoo's ORM applies them on create and write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.errors import (
    InvalidTextRepresentation,
    MissingError,
    PythonValueError,
    ValidationError,
)
from cloud_relay.odoo.sandbox.fields import Field, scalar_to_stored

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.orm import Model


def check_field_names(model: Model, names: Iterable[str]) -> list[str]:
    """The names, or Odoo's ValueError for the first that is not a field of the model."""
    result = []
    for name in names:
        if name != "id" and name not in model.fields:
            raise PythonValueError(f"Invalid field {name!r} on model {model._name!r}")
        result.append(name)
    return result


def split_values(
    model: Model, vals: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(stored, parent, x2many, inverse) values, scalars converted to their stored form."""
    stored: dict[str, Any] = {}
    parents: dict[str, Any] = {}
    relational: dict[str, Any] = {}
    inverses: dict[str, Any] = {}
    for name, value in vals.items():
        if name == "id":
            continue
        spec = model.fields[name]
        if name in model._inverses:
            inverses[name] = value
        elif spec.via:
            parents[name] = value
        elif spec.kind in ("one2many", "many2many"):
            relational[name] = value
        elif spec.compute is not None:
            continue
        elif spec.kind == "many2one":
            stored[name] = many2one_id(model, spec, value)
        else:
            stored[name] = scalar_to_stored(model._name, name, spec, value)
    return stored, parents, relational, inverses


def many2one_id(model: Model, spec: Field, value: Any) -> int | None:
    """The id a written many2one value points to (MissingError if there is no such record)."""
    if value is False or value is None or value == 0:
        return None
    if isinstance(value, list | tuple) and value:
        value = value[0]
    if not isinstance(value, int) or isinstance(value, bool):
        table = spec.relation.replace(".", "_")
        raise InvalidTextRepresentation.for_id(table, value)
    if not model.env.db.exists(spec.relation, value):
        raise MissingError.for_records(spec.relation, [value], model.env.uid)
    return value


def default_value(model: Model, spec: Field, vals: Mapping[str, Any]) -> Any:
    """The default of a field for a record being created with ``vals``."""
    default = spec.default
    if callable(default):
        default = default(model.env, vals)
    if default is None:
        return spec.empty()
    if spec.kind == "many2one":
        return default or None
    return default


def check_required(model: Model, row: Mapping[str, Any]) -> None:
    """Odoo's NOT NULL ValidationError for the first required field left empty."""
    for name, spec in model.fields.items():
        if spec.required and spec.stored and row.get(name) in (None, ""):
            raise ValidationError(
                "The operation cannot be completed:\n"
                "- Create/update: a mandatory field is not set.\n"
                "- Delete: another model requires the record being deleted. "
                "If possible, archive it instead.\n\n"
                f"Model: {model._description} ({model._name})\n"
                f"Field: {spec.string} ({name})\n"
            )
