"""``Model.load(fields, data)``: Odoo's import, an upsert keyed by external id.

What a connector relies on (contract §8): the external id is bound in the same transaction as
the create; an id that exists already turns the row into a write; ids without a dot get the
``__import__.`` prefix; errors come back in ``messages`` (nothing is raised) and undo the
whole load. Supported columns: ``id``, ``.id``, plain fields, ``field/id`` and ``field/.id``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud_relay.odoo.sandbox.errors import OdooError

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.ir_model_data import ModelData
    from cloud_relay.odoo.sandbox.orm import Model

_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f", ""}


class _Rejected(Exception):
    """Raised inside the load savepoint so every change of the load is undone."""


def load_rows(model: Model, columns: list[str], data: list[list[Any]]) -> dict[str, Any]:
    """Import ``data`` into ``model``; answer ``{'ids', 'messages', 'nextrow'}``."""
    messages: list[dict[str, Any]] = []
    ids: list[int] = []
    try:
        with model.env.db.savepoint():
            for index, row in enumerate(data):
                try:
                    ids.append(_load_row(model, columns, row))
                except OdooError as error:
                    messages.append(_message(index, error.message))
            if messages:
                raise _Rejected
    except _Rejected:
        return {"ids": False, "messages": messages, "nextrow": 0}
    return {"ids": ids, "messages": [], "nextrow": 0}


def _message(index: int, text: str, field: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "error",
        "message": text,
        "record": index,
        "rows": {"from": index, "to": index},
    }
    if field:
        message["field"] = field
    return message


def _load_row(model: Model, columns: list[str], row: list[Any]) -> int:
    if len(row) != len(columns):
        raise OdooError(f"Row has {len(row)} values for {len(columns)} columns")
    xmlid: str | None = None
    record_id: int | None = None
    vals: dict[str, Any] = {}
    for column, raw in zip(columns, row, strict=True):
        if column == "id":
            xmlid = _qualified(model, str(raw)) if raw not in (None, False, "") else None
        elif column == ".id":
            record_id = int(raw) if raw not in (None, False, "") else None
        else:
            name, value = _convert(model, column, raw)
            vals[name] = value
    data = _model_data(model)
    if record_id is None and xmlid is not None:
        record_id = data.resolve(xmlid, model._name)
    if record_id is not None and model.env.db.exists(model._name, record_id):
        model.update([record_id], vals)
    else:
        record_id = model.new(vals)
    if xmlid is not None:
        data.bind(xmlid, model._name, record_id)
    return record_id


def _model_data(model: Model) -> ModelData:
    return cast("ModelData", model.env.sudo()["ir.model.data"])


def _qualified(model: Model, xmlid: str) -> str:
    if "." in xmlid:
        return xmlid
    return f"{model.env.context.get('module') or '__import__'}.{xmlid}"


def _convert(model: Model, column: str, raw: Any) -> tuple[str, Any]:
    name, _, suffix = column.partition("/")
    spec = model.fields.get(name)
    if spec is None or (suffix and spec.kind != "many2one"):
        raise OdooError(f"Unknown field {column!r} on model {model._name!r}")
    if raw in (None, False, ""):
        return name, False
    if spec.kind == "many2one":
        related = model.env.sudo()[spec.relation]
        if suffix == "id":
            found = _model_data(model).resolve(_qualified(model, str(raw)))
            if found is None:
                raise OdooError(
                    f"No matching record found for external id '{raw}' in field '{spec.string}'"
                )
            return name, found
        if suffix == ".id":
            return name, int(raw)
        matches = [i for i in related.search_ids([]) if related.display_name(i) == str(raw)]
        if not matches:
            raise OdooError(f"No matching record found for name '{raw}' in field '{spec.string}'")
        return name, matches[0]
    if spec.kind == "boolean" and isinstance(raw, str):
        if raw.strip().lower() not in _TRUE | _FALSE:
            raise OdooError(f"Unknown value '{raw}' for boolean field '{spec.string}'")
        return name, raw.strip().lower() in _TRUE
    if spec.kind in ("float", "integer") and isinstance(raw, str):
        try:
            number = float(raw)
        except ValueError:
            raise OdooError(
                f"'{raw}' does not seem to be a number for field '{spec.string}'"
            ) from None
        return name, int(number) if spec.kind == "integer" else number
    if spec.kind == "datetime" and isinstance(raw, str):
        return name, _to_utc(model, raw, spec.string)
    if spec.kind == "selection" and raw not in spec.selection:
        raise OdooError(f"Value '{raw}' not found in selection field '{spec.string}'")
    return name, raw


def _to_utc(model: Model, raw: str, string: str) -> str:
    """An imported datetime is local time: the context's ``tz``, else the user's, else UTC
    (``ir.fields.converter._input_tz``), converted to UTC for storage."""
    try:
        parsed = datetime.strptime(raw.strip()[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise OdooError(
            f"'{raw}' does not seem to be a valid datetime for field '{string}'"
        ) from None
    zone_name = model.env.context.get("tz")
    if not zone_name:
        user = model.env.db.get("res.users", model.env.uid)
        zone_name = user.get("tz") if user else None
    try:
        zone = ZoneInfo(zone_name) if zone_name else UTC
    except (ZoneInfoNotFoundError, ValueError):
        zone = UTC
    local = parsed.replace(tzinfo=zone)
    return local.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
