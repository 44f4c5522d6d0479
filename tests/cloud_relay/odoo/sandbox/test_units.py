"""Units of measure per version, seen through a move's ``product_qty`` (its demand in the
product's unit), the read-only view of Odoo's own conversion (contract Part C.3)."""

from __future__ import annotations

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import Odoo, OdooFault, Rpc, storable

STOCK, INVENTORY = 8, 14


async def _uom(x: Rpc, name: str) -> int:
    """A unit's id by name: the ids differ between 18 and 19 (as in the real databases)."""
    ids = await x("uom.uom", "search", [["name", "=", name]], context={"active_test": False})
    return int(ids[0])


async def _in_product_unit(odoo: Odoo, product_unit: str, qty: float, move_unit: str) -> float:
    x = odoo.x
    product_uom, move_uom = await _uom(x, product_unit), await _uom(x, move_unit)
    product = await storable(x, "P")
    await x("product.product", "write", [product], {"uom_id": product_uom})
    values = {
        "product_id": product,
        "product_uom_qty": qty,
        "product_uom": move_uom,
        "location_id": INVENTORY,
        "location_dest_id": STOCK,
    }
    if odoo.version <= 18:
        values["name"] = "probe"
    move = await x("stock.move", "create", values)
    return float((await x("stock.move", "read", [move], ["product_qty"]))[0]["product_qty"])


async def _units(x: Rpc, fields: list[str]) -> dict[str, dict[str, object]]:
    rows = await x(
        "uom.uom", "search_read", [], fields=["name", *fields], context={"active_test": False}
    )
    return {str(r["name"]): r for r in rows}


@pytest.mark.parametrize(
    ("qty", "from_uom", "to_uom", "expected"),
    [
        (1500, "g", "kg", 1.5),
        (2, "kg", "g", 2000.0),
        (1, "g", "kg", 0.01),  # 0.001 rounded UP to kg's 0.01
        (3, "Dozens", "Units", 36.0),
    ],
)
async def test_same_kind_converts_with_odoos_factors(
    odoo: Odoo, qty: float, from_uom: str, to_uom: str, expected: float
) -> None:
    assert await _in_product_unit(odoo, to_uom, qty, from_uom) == expected


async def test_18_keeps_categories_and_refuses_across_them(odoo18: Odoo) -> None:
    units = await _units(odoo18.x, ["factor", "category_id"])
    assert (units["g"]["factor"], units["kg"]["factor"]) == (1000.0, 1.0)
    with pytest.raises(OdooFault, match="doesn't belong to the same category"):
        await _in_product_unit(odoo18, "Units", 2, "kg")


async def test_19_has_relative_units_an_absolute_factor_and_no_check(odoo19: Odoo) -> None:
    x = odoo19.x
    with pytest.raises(OdooFault, match=r"uom\.category"):
        await x("uom.category", "search_read", [], fields=["name"])
    units = await _units(x, ["factor", "relative_factor", "relative_uom_id", "active"])
    assert (units["g"]["factor"], units["kg"]["factor"]) == (1.0, 1000.0)
    assert units["kg"]["relative_uom_id"] == [await _uom(x, "g"), "g"]
    assert units["Dozens"]["active"] is False
    # 2 kg of a product in Units silently becomes 2000 Units on 19.
    assert await _in_product_unit(odoo19, "Units", 2, "kg") == 2000.0
