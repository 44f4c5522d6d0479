"""Searching and reading records as the ORM's RPC methods do: the arguments are checked in
Odoo's order (``fields`` is iterated first, then the domain, the order, the field names, and
``limit``/``offset`` last, in SQL), then records are matched, sorted and sliced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox import domain, values
from cloud_relay.odoo.sandbox.domain import Constant
from cloud_relay.odoo.sandbox.domain_parse import compile_domain
from cloud_relay.odoo.sandbox.errors import PythonError
from cloud_relay.odoo.sandbox.pycall import python
from cloud_relay.odoo.sandbox.query import (
    OrderTerm,
    check_window,
    count_tail,
    parse_order,
    search_tail,
)

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.orm import Model

_FALSE = Constant(False)


def field_names(fields: Any) -> list[Any] | None:
    """The ``fields`` argument of read and search_read as Odoo iterates it (None: all)."""
    if not fields:
        return None
    names: list[Any] = python(list, fields)
    for name in names:
        python(hash, name)
    return names


def read_names(model: Model, ids: list[int], fields: Any) -> list[Any] | None:
    """``read``'s field names: unknown ones fail as a ValueError when there is a record to
    fetch, else as the KeyError of formatting nothing."""
    names = field_names(fields)
    if names and any(ids):
        values.check_field_names(model, names)
    elif names:
        _unknown_key(model, names)
    return names


def search(model: Model, filters: Any, offset: Any, limit: Any, order: Any) -> list[int]:
    """``search``: ids of the matching records."""
    tree = compile_domain(model, filters)
    if tree == _FALSE:
        return []
    return search_tree(model, tree, parse_order(model, order), offset, limit)


def search_read(
    model: Model, filters: Any, fields: Any, offset: Any, limit: Any, order: Any
) -> list[dict[str, Any]]:
    """``search_read``: the matching records, read."""
    names = field_names(fields)
    tree = compile_domain(model, filters or [])
    if tree == _FALSE:
        _unknown_key(model, names or [])
        return []
    terms = parse_order(model, order)
    if names:
        values.check_field_names(model, names)
    return model.read_records(search_tree(model, tree, terms, offset, limit), names)


def search_count(model: Model, filters: Any, limit: Any) -> int:
    """``search_count``: how many records match (at most ``limit``)."""
    tree = compile_domain(model, filters)
    if tree == _FALSE:
        return 0
    count, _ = check_window(count_tail(model), limit, None, suffix=") t")
    found = matching(model, tree)
    return len(found) if count is None else min(len(found), count)


def search_tree(
    model: Model, tree: domain.Tree, terms: list[OrderTerm], offset: Any, limit: Any
) -> list[int]:
    """Ids matching ``tree``, sorted by ``terms`` and sliced by ``offset``/``limit``."""
    count, skip = check_window(search_tail(model, terms), limit, offset)
    ordered = domain.sort_ids(model, matching(model, tree), terms)
    start = skip or 0
    return ordered[start : None if count is None else start + count]


def matching(model: Model, tree: domain.Tree) -> list[int]:
    """Ids of the records satisfying ``tree``, inactive ones and record rules applied."""
    model.env.flush()
    if (
        "active" in model.fields
        and model.env.context.get("active_test", True)
        and not domain.mentions(tree, "active")
    ):
        active = domain.Leaf("active", "=", True, ("active", "=", True))
        tree = domain.Node("&", (active, tree))
    rule = model.rule_tree()
    if rule is not None:
        tree = domain.Node("&", (rule, tree))
    pool = domain.candidates(model, tree)
    ids = model.env.db.all_ids(model._name) if pool is None else sorted(pool)
    return [i for i in ids if domain.matches(model, model.row(i), tree)]


def _unknown_key(model: Model, names: list[Any]) -> None:
    unknown = [n for n in names if n != "id" and n not in model.fields]
    if unknown:
        raise PythonError.of(KeyError(unknown[0]))
