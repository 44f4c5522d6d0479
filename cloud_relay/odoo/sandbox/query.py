"""Search arguments (``order``, ``limit``, ``offset``) checked as Odoo's ORM and PostgreSQL
check them, with their error texts.

Odoo validates ``order`` itself (a regular expression, then field names) and passes ``limit``
and ``offset`` to PostgreSQL untouched, so a bad value comes back as a psycopg2 error quoting
the SQL around it. The sandbox writes the tail of the query Odoo would have sent (its ORDER BY
from the model's order) and shows it the way libpq does.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.errors import OdooError, PythonError, PythonValueError, UserError
from cloud_relay.odoo.sandbox.pycall import raise_python, type_name

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.orm import Model

BIGINT_MAX = 2**63 - 1
_TERM = re.compile(
    r"""^\s*(?P<field>[a-z0-9_]+|"[a-z0-9_]+")(?:\.(?P<path>[a-z0-9_]+))?(?::[a-z_]+)?
        (?:\s+(?P<direction>desc|asc))?(?:\s+(?P<nulls>nulls\ first|nulls\ last))?\s*$""",
    re.IGNORECASE | re.VERBOSE,
)
_BIGINT_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_DISPLAY_SIZE = 60
_MIN_RIGHT_CUT = 10


@dataclass(frozen=True)
class OrderTerm:
    """One term of an ``order`` spec: field, direction (``ASC``/``DESC``/``""``), nulls."""

    field: str
    direction: str
    nulls: str

    @property
    def descending(self) -> bool:
        """Whether the term sorts in descending order."""
        return self.direction == "DESC"


def parse_order(model: Model, order: Any) -> list[OrderTerm]:
    """The terms of ``order`` (the model's own order when falsy), or Odoo's error for it."""
    if not order:
        order = model.default_order()
    if not isinstance(order, str):
        raise_python(TypeError, f"expected string or bytes-like object, got '{type_name(order)}'")
    matches = [_TERM.match(part) for part in order.split(",")]
    if not all(matches):
        raise UserError(
            f'Invalid "order" specified ({order}). A valid "order" specification is a '
            "comma-separated list of valid field names (optionally followed by asc/desc for "
            "the direction)"
        )
    terms = []
    for match in matches:
        assert match is not None
        name = match["field"].strip('"')
        if name != "id" and name not in model.fields:
            raise PythonValueError(f"Invalid field {name!r} on model {model._name!r}")
        spec = model.fields.get(name)
        if spec is not None and spec.kind in ("one2many", "many2many"):
            raise PythonValueError(
                f"Cannot convert {spec.owner or model._name}.{name} to SQL because it is not stored"
            )
        direction = (match["direction"] or "").upper()
        nulls = (match["nulls"] or "").upper()
        terms.append(OrderTerm(name, direction, nulls))
    return terms


def check_window(
    head: str, limit: Any, offset: Any, suffix: str = ""
) -> tuple[int | None, int | None]:
    """``limit`` and ``offset`` as PostgreSQL takes them (None: no clause, as Odoo drops falsy
    values), or the error it raises for the query ``head LIMIT .. OFFSET ..suffix``."""
    query, positions = head, {}
    for clause, value in (("LIMIT", limit), ("OFFSET", offset)):
        if value:
            query += f" {clause} "
            positions[clause] = len(query)
            query += _literal(value)
    query += suffix
    start = positions.get("OFFSET", 0)
    off = _row_count("OFFSET", offset, query, start)
    lim = _row_count("LIMIT", limit, query, positions.get("LIMIT", 0))
    for clause, number in (("OFFSET", off), ("LIMIT", lim)):
        _check_sign(clause, number)
    return lim, off


def _row_count(clause: str, value: Any, query: str, position: int) -> int | None:
    if not value:
        return None
    if isinstance(value, bool):
        raise _sql_error(
            "DatatypeMismatch",
            f"argument of {clause} must be type bigint, not type boolean",
            query,
            position,
        )
    if isinstance(value, list):
        kind = "integer[]" if all(isinstance(v, int) for v in value) else "text[]"
        raise _sql_error(
            "DatatypeMismatch",
            f"argument of {clause} must be type bigint, not type {kind}",
            query,
            position,
        )
    if isinstance(value, str):
        if not _BIGINT_TEXT.match(value):
            raise _sql_error(
                "InvalidTextRepresentation",
                f'invalid input syntax for type bigint: "{value}"',
                query,
                position,
            )
        number = int(value)
        if abs(number) > BIGINT_MAX:
            raise _sql_error(
                "NumericValueOutOfRange",
                f'value "{value}" is out of range for type bigint',
                query,
                position,
            )
        return number
    if isinstance(value, float):
        return int(Decimal(repr(value)).to_integral_value(ROUND_HALF_UP))
    if isinstance(value, int):
        return value
    raise PythonError("psycopg2.ProgrammingError", (f"can't adapt type '{type_name(value)}'",))


def _check_sign(clause: str, value: int | None) -> None:
    """PostgreSQL's run-time checks of a LIMIT or OFFSET value."""
    if value is None:
        return
    if abs(value) > BIGINT_MAX:
        raise PythonError("psycopg2.errors.NumericValueOutOfRange", ("bigint out of range\n",))
    if value < 0:
        kind = "LimitClause" if clause == "LIMIT" else "ResultOffsetClause"
        raise PythonError(
            f"psycopg2.errors.InvalidRowCountIn{kind}", (f"{clause} must not be negative\n",)
        )


def search_tail(model: Model, order: list[OrderTerm]) -> str:
    """The end of the SQL Odoo sends for a search, up to (not including) LIMIT."""
    table = _table(model._name)
    return f'SELECT "{table}"."id" FROM "{table}" ORDER BY {order_by(model, order, table)}'


def count_tail(model: Model) -> str:
    """The end of the SQL Odoo sends for a search_count, up to (not including) LIMIT."""
    return f'SELECT COUNT(*) FROM (SELECT FROM "{_table(model._name)}"'


def order_by(
    model: Model, terms: list[OrderTerm], alias: str, seen: frozenset[str] = frozenset()
) -> str:
    """The ORDER BY clause Odoo writes for ``terms`` (many2one fields follow their model)."""
    rendered = []
    for term in terms:
        rendered.extend(_order_term(model, term, alias, seen))
    return ", ".join(rendered)


def _order_term(model: Model, term: OrderTerm, alias: str, seen: frozenset[str]) -> list[str]:
    spec = model.fields.get(term.field)
    column = _column(model, term.field, alias)
    if spec is not None and spec.kind == "many2one":
        key = f"{model._name}.{term.field}"
        if key in seen:
            return []
        comodel = model.env.sudo()[spec.relation]
        if comodel.default_order() != "id":
            reverse = term.descending
            flipped = [
                OrderTerm(t.field, _flip(t.direction) if reverse else t.direction, t.nulls)
                for t in parse_order(comodel, comodel.default_order())
            ]
            return [order_by(comodel, flipped, f"{alias}__{term.field}", seen | {key})]
    if spec is not None and spec.kind == "boolean":
        column = f"COALESCE({column}, FALSE)"
    return [f"{column} {term.direction} {term.nulls}"]


def _flip(direction: str) -> str:
    return "ASC" if direction == "DESC" else "DESC"


def _column(model: Model, name: str, alias: str) -> str:
    spec = model.fields.get(name)
    if spec is not None and spec.via:
        alias = f"{alias}__{spec.via}"
    elif name in model._delegated:
        alias = f"{alias}__{model._delegated[name]}"
    column = f'"{alias}"."{name}"'
    if spec is not None and spec.translate:
        column += "->>'en_US'"
    return column


def _table(model_name: str) -> str:
    return model_name.replace(".", "_")


def _literal(value: Any) -> str:
    """How psycopg2 writes a Python value into SQL (a space before a negative number)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, list):
        return "ARRAY[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        raise PythonError("psycopg2.ProgrammingError", ("can't adapt type 'dict'",))
    if isinstance(value, int | float) and value < 0:
        return f" {value!r}"
    return json.dumps(value)


def _sql_error(name: str, message: str, query: str, position: int) -> OdooError:
    context = error_context(query, position)
    return PythonError(f"psycopg2.errors.{name}", (f"{message}\n{context}",))


def error_context(query: str, position: int) -> str:
    """libpq's ``LINE 1: ...`` excerpt with a caret under ``position`` (one-line queries)."""
    begin, end = 0, len(query)
    begin_cut = end_cut = False
    if end - begin > _DISPLAY_SIZE:
        if position + _MIN_RIGHT_CUT < _DISPLAY_SIZE:
            end = _DISPLAY_SIZE
            end_cut = True
        else:
            if position + _MIN_RIGHT_CUT < end:
                end = position + _MIN_RIGHT_CUT
                end_cut = True
            if end - begin > _DISPLAY_SIZE:
                begin = end - _DISPLAY_SIZE
                begin_cut = True
    prefix = "LINE 1: " + ("..." if begin_cut else "")
    line = prefix + query[begin:end] + ("..." if end_cut else "")
    caret = " " * (len(prefix) + position - begin) + "^"
    return f"{line}\n{caret}\n"
