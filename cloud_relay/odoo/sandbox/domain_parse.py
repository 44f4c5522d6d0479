"""Reading a JSON search domain the way Odoo 18 reads it, errors included.

Odoo first checks the domain's shape and arity (``normalize_domain``), then short-cuts domains
that are plainly false (an ``in`` with an empty list makes no query and raises nothing more),
then reads the leaves from the last to the first: unpacking, field, operator, value. Malformed
parts fail with the Python error that code meets, and a value PostgreSQL cannot cast fails with
its SQL error; the sandbox raises the same, in the same order.
"""

from __future__ import annotations

import operator as op
import re
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.domain import OPERATORS, Constant, Leaf, Node, Tree
from cloud_relay.odoo.sandbox.errors import PythonError, PythonValueError
from cloud_relay.odoo.sandbox.fields import scalar_to_stored
from cloud_relay.odoo.sandbox.pycall import python, raise_python, type_name
from cloud_relay.odoo.sandbox.query import error_context

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.orm import Model

SHAPE = "Domains to normalize must have a 'domain' form: a list or tuple of domain components"
_ARITY = {"!": 1, "&": 2, "|": 2}
_TRUE, _FALSE = (1, "=", 1), (0, "=", 1)
_INTEGER_TEXT = re.compile(r"^\s*[+-]?\d+\s*$")
_COMPARISONS = {"=", "!=", "<", ">", "<=", ">="}


def check_shape(domain: Any) -> None:
    """Odoo's assertion that a domain is a list."""
    if not isinstance(domain, list | tuple):
        raise_python(AssertionError, SHAPE)


def compile_domain(model: Model, domain: Any) -> Tree:
    """The tree of a domain given over RPC, or the error Odoo raises for it."""
    check_shape(domain)
    if not domain:
        return Constant(True)
    tokens = _normalize(domain)
    if _is_false(tokens):
        return Constant(False)
    leaves: dict[int, Leaf | Constant] = {}
    for index in reversed(range(len(tokens))):
        token = tokens[index]
        if not _is_operator(token):
            leaves[index] = _leaf(model, token)
    tree, _ = _build(tokens, leaves, 0)
    return tree


def _is_operator(token: Any) -> bool:
    return isinstance(token, str) and token in _ARITY


def _normalize(domain: list[Any] | tuple[Any, ...]) -> list[Any]:
    """Make the implicit ``&`` explicit; terms become tuples (``normalize_domain``)."""
    result: list[Any] = []
    expected = 1
    for token in domain:
        if expected == 0:
            result.insert(0, "&")
            expected = 1
        if isinstance(token, list | tuple):
            expected -= 1
            token = tuple(token)
        else:
            python(hash, token)
            expected += _ARITY.get(token, 0) - 1
        result.append(token)
    if expected:
        raise_python(ValueError, f"Domain {domain} is syntactically not correct.")
    return result


def _is_false(tokens: list[Any]) -> bool:
    """Whether the domain is false whatever the records (Odoo's ``is_false``, three-valued)."""
    stack: list[int] = []
    for token in reversed(tokens):
        if _is_operator(token):
            if token == "!":
                stack.append(-stack.pop())
            else:
                pick = min if token == "&" else max
                stack.append(pick(stack.pop(), stack.pop()))
        elif token == _TRUE:
            stack.append(1)
        elif token == _FALSE:
            stack.append(-1)
        else:
            kind = python(op.getitem, token, 1)
            if kind in ("in", "not in") and not python(op.getitem, token, 2):
                stack.append(-1 if kind == "in" else 1)
            else:
                stack.append(0)
    return stack.pop() == -1


def _leaf(model: Model, token: Any) -> Leaf | Constant:
    if token in (_TRUE, _FALSE):
        return Constant(token == _TRUE)
    try:
        left, operator, right = token
    except (TypeError, ValueError) as exc:
        raise PythonError.of(exc) from None
    raw = (left, operator, right)
    if not isinstance(left, str):
        raise_python(AttributeError, f"'{type_name(left)}' object has no attribute 'split'")
    operator, right = _check_leaf(model, left, operator, right, raw)
    return Leaf(left, operator, right, raw)


def _check_leaf(
    model: Model, path: str, operator: Any, right: Any, raw: tuple[Any, ...]
) -> tuple[str, Any]:
    name, _, rest = path.partition(".")
    spec = model.fields.get(name)
    if name != "id" and spec is None:
        raise PythonValueError(f"Invalid field {model._name}.{name} in leaf {raw!r}")
    if model.env.version >= 19 and isinstance(operator, str):
        operator = operator.lower()
    if not isinstance(operator, str) or (operator not in OPERATORS):
        raise PythonValueError(f"Invalid leaf {raw!r}")
    if rest:
        if spec is None or not spec.relation:
            raise_python(AssertionError, f"Invalid field {path!r} in domain term {raw!r}")
        comodel = model.env.sudo()[spec.relation]
        operator, right = _check_leaf(comodel, rest, operator, right, (rest, operator, right))
        return operator, right
    operator = "!=" if operator == "<>" else operator
    if isinstance(right, bool) and operator in ("in", "not in"):
        operator = "=" if operator == "in" else "!="
    if isinstance(right, list | tuple) and operator in ("=", "!="):
        operator = "in" if operator == "=" else "not in"
    if operator in ("in", "not in") and not isinstance(right, list | tuple):
        raise PythonValueError(f"Invalid domain term {raw!r}")
    kind = "integer" if name == "id" else (spec.kind if spec else "")
    if operator in ("child_of", "parent_of"):
        relation = spec.relation if spec is not None else ""
        target = model.env.sudo()[relation] if relation else model
        if not target._parent_name:
            _no_hierarchy(right)
    elif kind == "integer" and operator in _COMPARISONS | {"in", "not in"}:
        right = _integers(model, name, operator, right)
    elif kind == "float" and operator in _COMPARISONS and isinstance(right, str):
        right = python(float, right)
    elif kind in ("datetime", "date") and operator in _COMPARISONS:
        right = _moment(model, name, operator, right, kind)
    return operator, right


def _no_hierarchy(right: Any) -> None:
    """``child_of`` on a model that is no tree: Odoo looks for its ``parent_id`` and fails."""
    if right is None or isinstance(right, float):
        raise_python(TypeError, f"'{type_name(right)}' object is not iterable")
    if not (isinstance(right, list | dict) and not right):
        raise PythonError.of(KeyError("parent_id"))


def _moment(model: Model, name: str, operator: str, right: Any, kind: str) -> Any:
    """A date or datetime value as PostgreSQL casts it (unreadable text fails in SQL)."""
    if right is None or right is False:
        return right
    text = right if isinstance(right, str) else str(right)
    try:
        stored = scalar_to_stored(model._name, name, model.fields[name], text)
    except PythonValueError:
        stored = None
    if stored is None:
        pg_type = "timestamp" if kind == "datetime" else "date"
        raise _cast_error(model, name, operator, [text], text, pg_type)
    return stored


def _integers(model: Model, name: str, operator: str, right: Any) -> Any:
    """Integer column values as PostgreSQL casts them (text that is no number fails in SQL)."""
    values = list(right) if isinstance(right, list | tuple) else [right]
    for value in values:
        if isinstance(value, str) and not _INTEGER_TEXT.match(value):
            raise _cast_error(model, name, operator, values, value, "integer")
    cast = [int(v) if isinstance(v, str) else v for v in values]
    return cast if isinstance(right, list | tuple) else cast[0]


def _cast_error(
    model: Model, name: str, operator: str, values: list[Any], bad: str, pg_type: str
) -> PythonError:
    table = model._name.replace(".", "_")
    column = f'"{table}"."{name}"'
    if operator in ("in", "not in"):
        before = f"{column} {operator.upper()} ("
        shown = [_sql_literal(v) for v in values]
        index = values.index(bad)
        position_in_leaf = len(before) + len(", ".join(shown[:index])) + (2 if index else 0)
        leaf = before + ", ".join(shown) + ")"
    else:
        before = f"{column} {operator} "
        position_in_leaf = len(before)
        leaf = before + _sql_literal(bad)
    head = f'SELECT "{table}"."id" FROM "{table}" WHERE '
    if "active" in model.fields:
        head += f'(("{table}"."active" = true) AND ('
        tail = "))"
    else:
        head += "("
        tail = ")"
    if "company_id" in model.fields:
        tail += f' AND ("{table}"."company_id" IN (1) OR "{table}"."company_id" IS NULL)'
    query = head + leaf + tail
    context = error_context(query, len(head) + position_in_leaf)
    message = f'invalid input syntax for type {pg_type}: "{bad}"\n{context}'
    error = "InvalidTextRepresentation" if pg_type == "integer" else "InvalidDatetimeFormat"
    return PythonError(f"psycopg2.errors.{error}", (message,))


def _sql_literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "NULL" if value is None else str(value)


def _build(tokens: list[Any], leaves: dict[int, Leaf | Constant], index: int) -> tuple[Tree, int]:
    token = tokens[index]
    if not _is_operator(token):
        return leaves[index], index + 1
    first, after = _build(tokens, leaves, index + 1)
    if token == "!":
        return Node("!", (first,)), after
    second, after = _build(tokens, leaves, after)
    return Node(token, (first, second)), after
