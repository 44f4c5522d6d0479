"""The ORM surface: domains, ordering and paging, reads of missing ids, write/create errors."""

from __future__ import annotations

import functools
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud_relay.odoo.sandbox import Sandbox
from cloud_relay.odoo.sandbox.errors import OdooError

ADMIN = 2
PRODUCTS: list[dict[str, Any]] = [
    {"name": "Steel plate", "default_code": "SP-1", "list_price": 5.0, "active": True},
    {"name": "Bolt M8", "default_code": "B-8", "list_price": 0.5, "active": True},
    {"name": "Bolt M10", "default_code": False, "list_price": 0.75, "active": True},
    {"name": "Gearbox", "default_code": "GB", "list_price": 120.0, "active": True},
    {"name": "Old gearbox", "default_code": "GB-OLD", "list_price": 99.0, "active": False},
]


@functools.cache
def _catalogue() -> tuple[Sandbox, tuple[int, ...]]:
    sandbox = Sandbox(18)
    ids = tuple(
        sandbox.call_kw(ADMIN, "product.product", "create", [dict(values)], {})
        for values in PRODUCTS
    )
    return sandbox, ids


def _search(domain: list[Any], **kwargs: Any) -> list[int]:
    sandbox, _ = _catalogue()
    found: list[int] = sandbox.call_kw(ADMIN, "product.product", "search", [domain], kwargs)
    return found


def _ids(*names: str) -> list[int]:
    _, ids = _catalogue()
    by_name = {values["name"]: ids[i] for i, values in enumerate(PRODUCTS)}
    return [by_name[name] for name in names]


def test_operators() -> None:
    assert _search([["default_code", "=", "B-8"]]) == _ids("Bolt M8")
    assert sorted(_search([["default_code", "!=", False]])) == sorted(
        _ids("Steel plate", "Bolt M8", "Gearbox")
    )
    assert _search([["default_code", "=", False]]) == _ids("Bolt M10")
    assert sorted(_search([["name", "ilike", "bolt"]])) == sorted(_ids("Bolt M8", "Bolt M10"))
    assert _search([["name", "like", "bolt"]]) == []
    assert _search([["name", "=like", "Bolt M_"]]) == _ids("Bolt M8")
    assert sorted(_search([["list_price", "<", 1]])) == sorted(_ids("Bolt M8", "Bolt M10"))
    assert _search([["list_price", ">=", 120]]) == _ids("Gearbox")
    assert sorted(_search([["default_code", "in", ["GB", "SP-1"]]])) == sorted(
        _ids("Gearbox", "Steel plate")
    )
    assert sorted(_search(["|", ["name", "=", "Gearbox"], "!", ["list_price", ">", 1]])) == sorted(
        _ids("Gearbox", "Bolt M8", "Bolt M10")
    )
    assert _search([["product_tmpl_id.name", "=", "Gearbox"]]) == _ids("Gearbox")
    assert _search([["active", "=", False]]) == _ids("Old gearbox")


def test_order_limit_offset_and_count() -> None:
    by_price = _search([], order="list_price desc")
    assert by_price == _ids("Gearbox", "Steel plate", "Bolt M10", "Bolt M8")
    assert _search([], order="list_price desc", limit=2, offset=1) == _ids(
        "Steel plate", "Bolt M10"
    )
    sandbox, _ = _catalogue()
    assert sandbox.call_kw(ADMIN, "product.product", "search_count", [[]], {}) == 4
    rows = sandbox.call_kw(
        ADMIN,
        "product.product",
        "search_read",
        [[["default_code", "=", "GB"]]],
        {"fields": ["name", "list_price"]},
    )
    assert rows == [{"id": _ids("Gearbox")[0], "name": "Gearbox", "list_price": 120.0}]


def _fails(model: str, method: str, args: list[Any], kwargs: dict[str, Any]) -> OdooError:
    sandbox, _ = _catalogue()
    with sandbox.db.transaction(), pytest.raises(OdooError) as caught:
        sandbox.call_kw(ADMIN, model, method, args, kwargs)
    return caught.value


def test_missing_records_and_bad_values() -> None:
    sandbox, ids = _catalogue()
    assert sandbox.call_kw(ADMIN, "product.product", "read", [[987654321]], {}) == []
    kept = sandbox.call_kw(
        ADMIN, "product.product", "read", [[ids[0], 987654321]], {"fields": ["name"]}
    )
    assert kept == [{"id": ids[0], "name": "Steel plate"}]
    missing = _fails("product.product", "write", [[987654321], {"name": "x"}], {})
    assert missing.name == "odoo.exceptions.MissingError"
    assert missing.message.endswith("(Record: product.product(987654321,), User: 2)")
    required = _fails("mrp.production", "create", [{"product_qty": 1}], {})
    assert required.message.endswith("Field: Product (product_id)\n")
    selection = _fails("mrp.bom", "create", [{"product_tmpl_id": 1, "consumption": "often"}], {})
    assert selection.message == "Wrong value for mrp.bom.consumption: 'often'"
    text = _fails("mrp.production", "read", [["abc"]], {"fields": ["name"]})
    assert text.name == "psycopg2.errors.InvalidTextRepresentation"
    field = _fails("product.product", "search_read", [[["nope", "=", 1]]], {})
    assert re.match(r"Invalid field product\.product\.nope in leaf", field.message)


_LEAVES = st.sampled_from(
    [
        (["list_price", "<", 1], lambda p: p["list_price"] < 1),
        (["list_price", ">=", 5], lambda p: p["list_price"] >= 5),
        (["list_price", "in", [0.5, 120]], lambda p: p["list_price"] in (0.5, 120)),
        (["name", "ilike", "box"], lambda p: "box" in p["name"].lower()),
        (["name", "not ilike", "bolt"], lambda p: "bolt" not in p["name"].lower()),
        (["default_code", "=", False], lambda p: not p["default_code"]),
        (["default_code", "!=", "GB"], lambda p: p["default_code"] != "GB"),
        (
            ["default_code", "not in", ["B-8", "SP-1"]],
            lambda p: p["default_code"] not in ("B-8", "SP-1"),
        ),
    ]
)


def _trees(leaf: Any) -> Any:
    return st.one_of(
        st.tuples(st.just("!"), leaf),
        st.tuples(st.sampled_from(["&", "|"]), leaf, leaf),
    )


@settings(max_examples=150, deadline=None)
@given(st.recursive(_LEAVES, _trees, max_leaves=6))
def test_domains_match_a_reference_evaluation(tree: Any) -> None:
    def flatten(node: Any) -> list[Any]:
        if isinstance(node[0], str):
            return [node[0]] + [item for child in node[1:] for item in flatten(child)]
        return [node[0]]

    def holds(node: Any, product: dict[str, Any]) -> bool:
        if node[0] == "!":
            return not holds(node[1], product)
        if node[0] == "&":
            return holds(node[1], product) and holds(node[2], product)
        if node[0] == "|":
            return holds(node[1], product) or holds(node[2], product)
        return bool(node[1](product))

    _, ids = _catalogue()
    expected = sorted(ids[i] for i, p in enumerate(PRODUCTS) if p["active"] and holds(tree, p))
    assert sorted(_search(flatten(tree))) == expected
