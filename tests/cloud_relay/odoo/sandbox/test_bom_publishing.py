"""The calls a BOM publisher makes, answered as Odoo 18.0 and 19.0 answered them live: units
and their factors (and the reversed meaning of ``factor`` on 19), ``load`` of a BOM with lines
and operations (duplicates without sub-record ids, an upsert with them, no line pointing at an
operation of the same load), which BOM a new MO gets, and units of another kind on a line.

The unit tables recorded live are kept in ``recorded/units.json``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cloud_relay.odoo.sandbox.conftest import _started
from tests.cloud_relay.odoo.sandbox.scenario import Odoo, OdooFault, Rpc

RECORDED = json.loads((Path(__file__).parent / "recorded" / "units.json").read_text())
UNIT_FIELDS_19 = ["name", "relative_uom_id", "relative_factor", "factor", "rounding", "sequence"]
UNIT_FIELDS_18 = ["name", "category_id", "factor", "factor_inv", "rounding", "uom_type", "ratio"]


@pytest.fixture(params=[18, 19], ids=lambda v: f"odoo{v}")
async def odoo(request: pytest.FixtureRequest) -> AsyncIterator[Odoo]:
    """The versions measured live for BOM publishing."""
    async for started in _started(request.param):
        yield started


def _without(rows: list[dict[str, Any]], *keys: str) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in keys} for row in rows]


async def test_units_19_are_the_recorded_chain(odoo19: Odoo) -> None:
    rows = await odoo19.x("uom.uom", "search_read", [], fields=[*UNIT_FIELDS_19, "active"])
    by_id = {row["id"]: row for row in rows}
    for recorded in RECORDED["19"]:
        assert by_id[recorded["id"]] == recorded
    assert len(rows) == len(RECORDED["19"])
    archived = await odoo19.x(
        "uom.uom",
        "read",
        [8, 3],
        fields=["name", "active", "relative_uom_id", "relative_factor", "factor"],
        context={"active_test": False},
    )
    assert archived == RECORDED["19_archived"]


async def test_units_18_have_categories_and_factors(odoo18: Odoo) -> None:
    rows = await odoo18.x("uom.uom", "search_read", [], fields=[*UNIT_FIELDS_18, "active"])
    by_id = {row["id"]: row for row in rows}
    assert len(rows) == 26
    for recorded in RECORDED["18"]:
        assert by_id[recorded["id"]] == recorded
    categories = await odoo18.x("uom.category", "search_read", [], fields=["name"])
    assert _without(categories, "reference_uom_id") == _without(
        RECORDED["18_categories"], "reference_uom_id"
    )


async def test_no_public_conversion_and_19_helpers(odoo: Odoo) -> None:
    kg = await odoo.x("uom.uom", "search", [["name", "=", "kg"]])
    assert kg == ([16] if odoo.version >= 19 else [12])
    with pytest.raises(OdooFault, match=r"Private methods .*_compute_quantity"):
        await odoo.x("uom.uom", "_compute_quantity", kg, 3, 1)
    if odoo.version >= 19:
        assert await odoo.x("uom.uom", "round", kg, 1.23456) == 1.23
        assert await odoo.x("uom.uom", "compare", kg, 1.001, 1.0) == 0
        assert await odoo.x("uom.uom", "is_zero", kg, 0.001) is True
    else:
        with pytest.raises(OdooFault, match=r"The method 'uom\.uom\.round' does not exist"):
            await odoo.x("uom.uom", "round", kg, 1.23456)


async def _products(x: Rpc, module: str) -> None:
    result = await x(
        "product.product",
        "load",
        ["id", "name", "type", "is_storable", "uom_id/id"],
        [
            [f"{module}.fg", "LFG", "consu", "True", "uom.product_uom_unit"],
            [f"{module}.c1", "LC1", "consu", "True", "uom.product_uom_unit"],
            [f"{module}.c2", "LC2", "consu", "True", "uom.product_uom_kgm"],
        ],
    )
    assert result["messages"] == []


async def _template(x: Rpc, module: str) -> int:
    _, product = await x("ir.model.data", "check_object_reference", module, "fg")
    rows = await x("product.product", "read", [product], fields=["product_tmpl_id"])
    return int(rows[0]["product_tmpl_id"][0])


def _rows(module: str, template: int, workcenter: int, *, ops: bool = False) -> list[list[str]]:
    first = [f"{module}.bom_b", str(template), "1", "uom.product_uom_unit", "LB", "20", "flexible"]
    op = [f"{module}.bom_b_op1", "Cut", str(workcenter), "10"]
    op2 = [f"{module}.bom_b_op2", "Weld", str(workcenter), "20"]
    line = [f"{module}.bom_b_l1", f"{module}.c1", "2", "uom.product_uom_unit"]
    line2 = [f"{module}.bom_b_l2", f"{module}.c2", "0.5", "uom.product_uom_kgm"]
    if ops:
        line.append(f"{module}.bom_b_op1")
        line2.append(f"{module}.bom_b_op2")
    return [first + op + line, [""] * 7 + op2 + line2]


LOAD_FIELDS = [
    "id",
    "product_tmpl_id/.id",
    "product_qty",
    "product_uom_id/id",
    "code",
    "sequence",
    "consumption",
    "operation_ids/id",
    "operation_ids/name",
    "operation_ids/workcenter_id/.id",
    "operation_ids/time_cycle_manual",
    "bom_line_ids/id",
    "bom_line_ids/product_id/id",
    "bom_line_ids/product_qty",
    "bom_line_ids/product_uom_id/id",
]


async def test_load_with_sub_ids_is_an_upsert_and_links_in_a_second_load(odoo: Odoo) -> None:
    x, module = odoo.x, "ctr_m"
    await _products(x, module)
    template = await _template(x, module)
    workcenter = await x("mrp.workcenter", "create", {"name": "WCL"})
    rows = _rows(module, template, workcenter)
    first = await x("mrp.bom", "load", LOAD_FIELDS, rows)
    bom = first["ids"][0]
    read = (await x("mrp.bom", "read", [bom], fields=["bom_line_ids", "operation_ids"]))[0]
    lines, ops = read["bom_line_ids"], read["operation_ids"]
    assert len(lines) == 2 and len(ops) == 2
    assert await x("ir.model.data", "check_object_reference", module, "bom_b_l1") == [
        "mrp.bom.line",
        lines[0],
    ]
    assert await x("mrp.bom", "load", LOAD_FIELDS, rows) == first
    again = (await x("mrp.bom", "read", [bom], fields=["bom_line_ids", "operation_ids"]))[0]
    assert (again["bom_line_ids"], again["operation_ids"]) == (lines, ops)
    # A line left out of a load is kept.
    short = [[*rows[0][:13], "7", rows[0][14]]]
    await x("mrp.bom", "load", LOAD_FIELDS, short)
    quantities = await x("mrp.bom.line", "read", lines, fields=["product_qty"])
    assert [q["product_qty"] for q in quantities] == [7.0, 0.5]
    # Linking lines to operations in a second load.
    linked = await x(
        "mrp.bom",
        "load",
        [*LOAD_FIELDS, "bom_line_ids/operation_id/id"],
        _rows(module, template, workcenter, ops=True),
    )
    assert linked == first
    got = await x("mrp.bom.line", "read", lines, fields=["operation_id"])
    assert [g["operation_id"][0] for g in got] == ops


async def test_load_cannot_point_at_an_operation_of_the_same_load(odoo: Odoo) -> None:
    x, module = odoo.x, "ctr_n"
    await _products(x, module)
    template = await _template(x, module)
    workcenter = await x("mrp.workcenter", "create", {"name": "WCN"})
    rows = _rows(module, template, workcenter, ops=True)
    answer = await x("mrp.bom", "load", [*LOAD_FIELDS, "bom_line_ids/operation_id/id"], rows)
    assert answer["ids"] is False
    message = answer["messages"][0]
    assert message["field"] == "bom_line_ids"
    assert message["field_name"] == "BoM Lines"
    assert message["message"] == (
        f"No matching record found for external id '{module}.bom_b_op1' in field "
        "'BoM Lines/Consumed in Operation'"
    )
    assert await x("mrp.bom", "search_count", [["code", "=", "LB"]]) == 0


async def test_load_without_sub_ids_duplicates_lines(odoo: Odoo) -> None:
    x, module = odoo.x, "ctr_d"
    await _products(x, module)
    template = await _template(x, module)
    fields = [
        "id",
        "product_tmpl_id/.id",
        "code",
        "bom_line_ids/product_id/id",
        "bom_line_ids/product_qty",
    ]
    rows = [
        [f"{module}.bom_a", str(template), "LA", f"{module}.c1", "2"],
        ["", "", "", f"{module}.c2", "0.5"],
    ]
    first = await x("mrp.bom", "load", fields, rows)
    assert await x("mrp.bom", "load", fields, rows) == first
    read = await x("mrp.bom", "read", first["ids"], fields=["bom_line_ids"])
    assert len(read[0]["bom_line_ids"]) == 4
    assert await x("mrp.bom", "search_count", [["code", "=", "LA"]]) == 1


async def _bom(x: Rpc, template: int, sequence: int, variant: int | None = None) -> int:
    vals: dict[str, Any] = {"product_tmpl_id": template, "sequence": sequence}
    if variant:
        vals["product_id"] = variant
    bom: int = await x("mrp.bom", "create", vals)
    return bom


async def test_new_mo_gets_lowest_sequence_then_variant(odoo: Odoo) -> None:
    x = odoo.x
    product = await x("product.product", "create", {"name": "FG", "is_storable": True})
    template = (await x("product.product", "read", [product], fields=["product_tmpl_id"]))[0]
    tmpl = int(template["product_tmpl_id"][0])
    a = await _bom(x, tmpl, 10)
    b = await _bom(x, tmpl, 5)
    c = await _bom(x, tmpl, 10, product)

    async def picked() -> int:
        mo = await x("mrp.production", "create", {"product_id": product, "product_qty": 1})
        return int((await x("mrp.production", "read", [mo], fields=["bom_id"]))[0]["bom_id"][0])

    assert await picked() == b
    await x("mrp.bom", "write", [b], {"active": False})
    assert await picked() == c
    await x("mrp.bom", "write", [c], {"sequence": 11})
    assert await picked() == a


async def test_line_in_a_unit_of_another_kind(odoo: Odoo) -> None:
    x = odoo.x
    finished = await x("product.product", "create", {"name": "FG2", "is_storable": True})
    component = await x("product.product", "create", {"name": "C1", "is_storable": True})
    tmpl = (await x("product.product", "read", [finished], fields=["product_tmpl_id"]))[0]
    kg = (await x("uom.uom", "search", [["name", "=", "kg"]]))[0]
    bom = await x(
        "mrp.bom",
        "create",
        {
            "product_tmpl_id": tmpl["product_tmpl_id"][0],
            "product_uom_id": 1,
            "bom_line_ids": [
                [0, 0, {"product_id": component, "product_qty": 2, "product_uom_id": kg}]
            ],
        },
    )
    vals = {"product_id": finished, "product_qty": 1, "bom_id": bom}
    if odoo.version >= 19:
        mo = await x("mrp.production", "create", vals)
        assert await x("mrp.production", "action_confirm", [mo]) is True
        moves = await x(
            "stock.move",
            "search_read",
            [["raw_material_production_id", "=", mo]],
            fields=["product_uom_qty", "product_qty"],
        )
        assert [(m["product_uom_qty"], m["product_qty"]) for m in moves] == [(2.0, 2000.0)]
    else:
        with pytest.raises(OdooFault) as caught:
            await x("mrp.production", "create", vals)
        assert caught.value.message.startswith(
            "You cannot perform moves because their unit of measure has a different category "
            "from their product unit of measure.\n\nC1 --> Product UoM is Units (Unit) - Move "
            "UoM is kg (Weight)\n\nBlocking: "
        )


async def test_empty_company_cell_loads_a_bom_of_no_company(odoo: Odoo) -> None:
    """Seen on real 18.0: an empty ``company_id/.id`` writes False (not the default company),
    and an operation on a work centre of a company is then refused; the load rolls back."""
    x, module = odoo.x, "ctr_c"
    await _products(x, module)
    template = await _template(x, module)
    workcenter = await x("mrp.workcenter", "create", {"name": "CNC"})
    fields = [
        "id",
        "product_tmpl_id/.id",
        "code",
        "company_id/.id",
        "operation_ids/id",
        "operation_ids/name",
        "operation_ids/workcenter_id/.id",
    ]
    rows = [[f"{module}.bom", str(template), "LC", "", f"{module}.op", "Machine", str(workcenter)]]
    answer = await x("mrp.bom", "load", fields, rows)
    assert answer["ids"] is False
    assert answer["messages"][0]["message"] == (
        "Incompatible companies on records:\n- \u201cMachine\u201d belongs to company "
        "\u201cFalse\u201d and \u201cWork Center\u201d (workcenter_id: 'CNC') belongs to another"
        " company."
    )
    rows[0][3] = "1"
    assert (await x("mrp.bom", "load", fields, rows))["messages"] == []


async def test_manufacturing_users_cannot_write_boms(odoo: Odoo) -> None:
    """As on real 18.0 and 19.0 (``check_access_rights('create')`` is False for Manufacturing
    users on BOMs, lines and operations): publishing needs the Manufacturing administrator."""
    product = await odoo.x("product.product", "create", {"name": "FG"})
    template = (await odoo.x("product.product", "read", [product], fields=["product_tmpl_id"]))[0]
    with pytest.raises(OdooFault) as caught:
        await odoo.connector(
            "mrp.bom", "create", {"product_tmpl_id": template["product_tmpl_id"][0]}
        )
    assert caught.value.name == "odoo.exceptions.AccessError"
