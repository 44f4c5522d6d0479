"""``Model.load(fields, data)``: Odoo's import, an upsert keyed by external id.

What a connector relies on (contract §8): the external id is bound in the same transaction as
the create; an id that exists already turns the row into a write; ids without a dot get the
``__import__.`` prefix; errors come back in ``messages`` (nothing is raised) and undo the
whole load. Supported columns: ``id``, ``.id``, plain fields, ``field/id`` and ``field/.id``,
and one2many sub-fields (``bom_line_ids/product_id/id``): a sub-record per row, continued on the
next rows with the parent's columns empty. A sub-row with ``x/id`` updates the record bound to
it, or creates one and binds it; without, it always creates (a re-load appends copies), and
sub-records left out are kept. Values are resolved before anything of the record is written,
so a sub-row cannot point at a sub-record created in the same load.
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


class _FieldError(OdooError):
    """A conversion error of one column, naming its field."""

    def __init__(self, message: str, field: str, field_name: str) -> None:
        super().__init__(message)
        self.field = field
        self.field_name = field_name


def load_rows(model: Model, columns: list[str], data: list[list[Any]]) -> dict[str, Any]:
    """Import ``data`` into ``model``; answer ``{'ids', 'messages', 'nextrow'}``."""
    messages: list[dict[str, Any]] = []
    ids: list[int] = []
    try:
        with model.env.db.savepoint():
            for index, rows in _records(model, columns, data):
                try:
                    ids.append(_load_record(model, columns, rows))
                except _FieldError as error:
                    messages.append(_message(index, error.message, error.field, error.field_name))
                except OdooError as error:
                    messages.append(_message(index, error.message))
            if messages:
                raise _Rejected
    except _Rejected:
        return {"ids": False, "messages": messages, "nextrow": 0}
    return {"ids": ids, "messages": [], "nextrow": 0}


def _records(
    model: Model, columns: list[str], data: list[list[Any]]
) -> list[tuple[int, list[list[Any]]]]:
    """Rows grouped per record: a row whose own (not one2many) columns are all empty continues
    the record above."""
    own = [i for i, column in enumerate(columns) if not _is_sub(model, column)]
    records: list[tuple[int, list[list[Any]]]] = []
    for index, row in enumerate(data):
        continued = records and len(row) == len(columns) and all(_empty(row[i]) for i in own)
        if continued and any(not _empty(v) for v in row):
            records[-1][1].append(row)
        else:
            records.append((index, [row]))
    return records


def _is_sub(model: Model, column: str) -> bool:
    """Whether ``column`` is a sub-field of a one2many (``bom_line_ids/product_qty``)."""
    spec = model.fields.get(column.split("/")[0])
    return "/" in column and spec is not None and spec.kind == "one2many"


def _empty(value: Any) -> bool:
    return value in (None, False, "")


def _message(
    index: int, text: str, field: str | None = None, field_name: str | None = None
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "error",
        "message": text,
        "record": index,
        "rows": {"from": index, "to": index},
    }
    if field:
        message["field"] = field
    if field_name:
        message["field_name"] = field_name
    return message


def _load_record(model: Model, columns: list[str], rows: list[list[Any]]) -> int:
    for row in rows:
        if len(row) != len(columns):
            raise OdooError(f"Row has {len(row)} values for {len(columns)} columns")
    xmlid: str | None = None
    record_id: int | None = None
    vals: dict[str, Any] = {}
    subs: dict[str, list[tuple[str | None, dict[str, Any]]]] = {}
    for column, raw in zip(columns, rows[0], strict=True):
        if column == "id":
            xmlid = _qualified(model, str(raw)) if not _empty(raw) else None
        elif column == ".id":
            record_id = int(raw) if not _empty(raw) else None
        elif _is_sub(model, column):
            name = column.split("/")[0]
            if name not in subs:
                subs[name] = _sub_records(model, columns, rows, name)
        else:
            name, value = _convert(model, column, raw)
            vals[name] = value
    data = _model_data(model)
    if record_id is None and xmlid is not None:
        record_id = data.resolve(xmlid, model._name)
    created: dict[str, list[str]] = {}
    for name, records in subs.items():
        related = model.fields[name].relation
        commands: list[Any] = []
        for sub_xmlid, sub_vals in records:
            sub_id = data.resolve(sub_xmlid, related) if sub_xmlid else None
            if sub_id is not None and model.env.db.exists(related, sub_id):
                commands.append((1, sub_id, sub_vals))
            else:
                commands.append((0, 0, sub_vals))
                created.setdefault(name, []).append(sub_xmlid or "")
        vals[name] = commands
    exists = record_id is not None and model.env.db.exists(model._name, record_id)
    before: dict[str, set[int]] = {name: set() for name in created}
    if exists and record_id is not None:
        before = {name: set(model.get(record_id, name) or []) for name in created}
        model.update([record_id], vals)
    else:
        record_id = model.new(vals)
    if xmlid is not None:
        data.bind(xmlid, model._name, record_id)
    for name, xmlids in created.items():
        new_ids = sorted(set(model.get(record_id, name) or []) - before[name])
        for sub_xmlid, sub_id in zip(xmlids, new_ids, strict=False):
            if sub_xmlid:
                data.bind(sub_xmlid, model.fields[name].relation, sub_id)
    return record_id


def _sub_records(
    model: Model, columns: list[str], rows: list[list[Any]], name: str
) -> list[tuple[str | None, dict[str, Any]]]:
    """(external id, values) of the ``name`` sub-records the record's rows carry."""
    spec = model.fields.get(name)
    if spec is None or spec.kind != "one2many":
        raise OdooError(f"Unknown field {name!r} on model {model._name!r}")
    related = model.env.sudo()[spec.relation]
    wanted = [(i, c.split("/", 1)[1]) for i, c in enumerate(columns) if c.split("/")[0] == name]
    result: list[tuple[str | None, dict[str, Any]]] = []
    for row in rows:
        if all(_empty(row[i]) for i, _ in wanted):
            continue
        sub_xmlid: str | None = None
        sub_vals: dict[str, Any] = {}
        for i, sub_column in wanted:
            if sub_column == "id":
                sub_xmlid = _qualified(model, str(row[i])) if not _empty(row[i]) else None
                continue
            try:
                field, value = _convert(related, sub_column, row[i], prefix=f"{spec.string}/")
            except OdooError as error:
                raise _FieldError(error.message, name, spec.string) from None
            if not _empty(row[i]):
                sub_vals[field] = value
        result.append((sub_xmlid, sub_vals))
    return result


def _model_data(model: Model) -> ModelData:
    return cast("ModelData", model.env.sudo()["ir.model.data"])


def _qualified(model: Model, xmlid: str) -> str:
    if "." in xmlid:
        return xmlid
    return f"{model.env.context.get('module') or '__import__'}.{xmlid}"


def _convert(model: Model, column: str, raw: Any, prefix: str = "") -> tuple[str, Any]:
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
                    f"No matching record found for external id '{raw}' in field "
                    f"'{prefix}{spec.string}'"
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
