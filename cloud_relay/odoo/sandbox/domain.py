"""Odoo search domains (prefix ``&``, ``|``, ``!`` over ``[field, operator, value]`` leaves).

Domains are read into a small tree (``domain_parse``) and evaluated row by row; an equality on
an indexed field narrows the candidates first, so the lookups a connector makes stay cheap.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.db import Row
from cloud_relay.odoo.sandbox.errors import PythonValueError
from cloud_relay.odoo.sandbox.query import OrderTerm

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.orm import Model

OPERATORS = frozenset(
    {
        "=",
        "!=",
        "<>",
        "<",
        ">",
        "<=",
        ">=",
        "in",
        "not in",
        "like",
        "ilike",
        "not like",
        "not ilike",
        "=like",
        "=ilike",
        "child_of",
        "parent_of",
        "=?",
    }
)


@dataclass(frozen=True)
class Leaf:
    """``path operator value``; ``path`` may follow many2one and x2many fields with dots."""

    path: str
    operator: str
    value: Any
    raw: tuple[Any, ...]


@dataclass(frozen=True)
class Node:
    """``&`` or ``|`` of two subtrees, or ``!`` of one."""

    operator: str
    children: tuple[Tree, ...]


@dataclass(frozen=True)
class Constant:
    """The always-true or always-false leaf (``[1, '=', 1]``, ``[0, '=', 1]``)."""

    value: bool


Tree = Leaf | Node | Constant


def mentions(tree: Tree, path: str) -> bool:
    """Whether a leaf of the tree is on field ``path``."""
    if isinstance(tree, Leaf):
        return tree.path == path or tree.path.startswith(path + ".")
    if isinstance(tree, Node):
        return any(mentions(child, path) for child in tree.children)
    return False


def candidates(model: Model, tree: Tree) -> set[int] | None:
    """Ids the tree can only match among, from indexes; None when no index helps."""
    if isinstance(tree, Node) and tree.operator == "&":
        found = (candidates(model, child) for child in tree.children)
        narrowed = [c for c in found if c is not None]
        if not narrowed:
            return None
        return set.intersection(*narrowed)
    if not isinstance(tree, Leaf) or "." in tree.path:
        return None
    db = model.env.db
    name = tree.path
    spec = model.fields.get(name)
    if name == "id" and tree.operator in ("=", "in"):
        wanted = tree.value if tree.operator == "in" else [tree.value]
        return {v for v in _as_list(wanted) if isinstance(v, int) and db.exists(model._name, v)}
    if spec is None or not spec.stored or not db.is_indexed(model._name, name):
        return None
    if spec.kind == "many2many":
        return None
    if tree.operator == "=" and not isinstance(tree.value, list | tuple):
        return db.lookup(model._name, name, _stored_key(spec.kind, tree.value))
    if tree.operator == "in" and isinstance(tree.value, list | tuple):
        union: set[int] = set()
        for value in tree.value:
            union |= db.lookup(model._name, name, _stored_key(spec.kind, value))
        return union
    return None


def _stored_key(kind: str, value: Any) -> Any:
    if value is False and kind != "boolean":
        return None
    return value


def matches(model: Model, row: Row, tree: Tree) -> bool:
    """Whether ``row`` of ``model`` satisfies the tree."""
    if isinstance(tree, Constant):
        return tree.value
    if isinstance(tree, Node):
        if tree.operator == "!":
            return not matches(model, row, tree.children[0])
        results = (matches(model, row, child) for child in tree.children)
        return all(results) if tree.operator == "&" else any(results)
    return _leaf(model, row, tree.path, tree)


def _leaf(model: Model, row: Row, path: str, leaf: Leaf) -> bool:
    name, _, rest = path.partition(".")
    if name == "id":
        return _compare(model, row["id"], leaf, "integer", "")
    spec = model.fields.get(name)
    if spec is None:
        raise PythonValueError(f"Invalid field {model._name}.{name} in leaf {leaf.raw!r}")
    value = model.value(row, name)
    if rest:
        related = model.env[spec.relation]
        ids = _as_ids(value)
        rows = [r for r in (related.row_or_none(i) for i in ids) if r is not None]
        if leaf.operator in ("!=", "not in", "not like", "not ilike"):
            return not any(_leaf(related, r, rest, _positive(leaf)) for r in rows)
        return any(_leaf(related, r, rest, leaf) for r in rows)
    if spec.kind in ("one2many", "many2many"):
        return _compare_many(model, _as_ids(value), leaf, spec.relation)
    return _compare(model, value, leaf, spec.kind, spec.relation)


def _positive(leaf: Leaf) -> Leaf:
    flipped = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}[leaf.operator]
    return Leaf(leaf.path, flipped, leaf.value, leaf.raw)


def _compare_many(model: Model, ids: list[int], leaf: Leaf, relation: str) -> bool:
    operator, value = leaf.operator, leaf.value
    if operator in ("=", "in", "!=", "not in") and (value is False or value is None):
        empty = not ids
        return empty if operator in ("=", "in") else not empty
    if operator in ("=", "in", "!=", "not in"):
        wanted = set(_as_list(value))
        hit = bool(wanted & set(ids))
        return hit if operator in ("=", "in") else not hit
    if operator in ("child_of", "parent_of"):
        family = model.env[relation].hierarchy(_as_ids(value), down=operator == "child_of")
        return bool(family & set(ids))
    related = model.env[relation]
    names = [related.display_name(i) for i in ids]
    return any(_text_match(name, leaf) for name in names)


def _compare(model: Model, value: Any, leaf: Leaf, kind: str, relation: str) -> bool:
    operator, wanted = leaf.operator, leaf.value
    if operator == "=?":
        if wanted is False or wanted is None:
            return True
        operator = "="
    if kind == "many2one":
        if operator in ("child_of", "parent_of"):
            family = model.env[relation].hierarchy(_as_ids(wanted), down=operator == "child_of")
            return value in family
        if isinstance(wanted, str) and operator not in ("in", "not in"):
            name = model.env[relation].display_name(value) if value else ""
            return _text_match(name, Leaf(leaf.path, operator, wanted, leaf.raw))
    if operator in ("child_of", "parent_of") and kind == "integer":
        family = model.hierarchy(_as_ids(wanted), down=operator == "child_of")
        return value in family
    if operator in ("=", "!="):
        equal = _equal(value, wanted, kind)
        return equal if operator == "=" else not equal
    if operator in ("in", "not in"):
        found = any(_equal(value, item, kind) for item in _as_list(wanted))
        return found if operator == "in" else not found
    if operator in ("<", ">", "<=", ">="):
        if value is None or wanted is None or wanted is False:
            return False
        try:
            return bool(_ORDERING[operator](value, wanted))
        except TypeError:
            return False
    return _text_match(value, leaf)


_ORDERING = {
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
    "<=": lambda a, b: a <= b,
    ">=": lambda a, b: a >= b,
}


def _equal(value: Any, wanted: Any, kind: str) -> bool:
    if wanted is False or wanted is None:
        if kind == "boolean":
            return value is False or value is None
        return value is None or value is False or (kind == "char" and value == "")
    if kind == "boolean":
        return bool(value) == bool(wanted)
    if isinstance(wanted, list | tuple) and kind == "many2one" and wanted:
        wanted = wanted[0]
    return bool(value == wanted)


def _text_match(value: Any, leaf: Leaf) -> bool:
    operator, pattern = leaf.operator, leaf.value
    negate = operator.startswith("not ")
    operator = operator.removeprefix("not ")
    if value is None or value is False:
        return negate
    text, wanted = str(value), "" if pattern in (None, False) else str(pattern)
    if operator in ("ilike", "=ilike"):
        text, wanted = text.lower(), wanted.lower()
    if operator in ("=like", "=ilike"):
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in wanted)
        hit = re.fullmatch(regex, text, re.DOTALL) is not None
    elif operator in ("like", "ilike"):
        hit = wanted in text
    else:
        hit = text == wanted
    return hit != negate


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list | tuple | set | frozenset):
        return list(value)
    return [value]


def _as_ids(value: Any) -> list[int]:
    if value is None or value is False:
        return []
    if isinstance(value, int):
        return [value]
    return [v for v in value if isinstance(v, int) and not isinstance(v, bool)]


def sort_ids(model: Model, ids: Iterable[int], terms: list[OrderTerm]) -> list[int]:
    """Sort ids by parsed ``order`` terms as PostgreSQL would; ties fall back to id."""
    ordered = sorted(ids)
    for term in reversed(terms):
        last = term.nulls == "NULLS LAST" if term.nulls else not term.descending
        key = functools.partial(
            _sort_key, model, name=term.field, nulls_high=last != term.descending
        )
        ordered.sort(key=key, reverse=term.descending)
    return ordered


def _sort_key(model: Model, record_id: int, *, name: str, nulls_high: bool) -> tuple[int, Any]:
    if name == "id":
        return (0, record_id)
    value = model.value(model.row(record_id), name)
    if model.fields[name].kind == "boolean":
        return (0, bool(value))
    if value is None or value is False:
        return (1 if nulls_high else -1, 0)
    if isinstance(value, list):
        return (0, tuple(value))
    return (0, value)
