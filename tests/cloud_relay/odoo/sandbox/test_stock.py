"""Stock arithmetic: reservations and their leaks, scrap, inventory counts, on-hand figures."""

from __future__ import annotations

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import (
    Odoo,
    OdooFault,
    Rpc,
    bom,
    confirmed_mo,
    count_stock,
    on_hand,
    raw_moves,
    storable,
)


async def _quants(x: Rpc, product: int) -> list[tuple[str | bool, float, float]]:
    rows = await x(
        "stock.quant",
        "search_read",
        [["product_id", "=", product], ["location_id", "=", 8]],
        fields=["lot_id", "quantity", "reserved_quantity"],
    )
    return [(r["lot_id"] and r["lot_id"][1], r["quantity"], r["reserved_quantity"]) for r in rows]


async def _lot_setup(x: Rpc) -> tuple[int, int, int, int]:
    """(finished product, resin, lot A, lot B): 30 of each lot, 2 resin per unit."""
    product = await storable(x, "Gearbox")
    resin = await storable(x, "Resin", tracking="lot")
    lot_a = await x("stock.lot", "create", {"name": "A", "product_id": resin})
    lot_b = await x("stock.lot", "create", {"name": "B", "product_id": resin})
    await count_stock(x, resin, 30, lot_a)
    await count_stock(x, resin, 30, lot_b)
    await bom(x, product, [(resin, 2)])
    return product, resin, lot_a, lot_b


async def test_clearing_lines_with_command_5_leaks_the_reservation(odoo18: Odoo) -> None:
    x = odoo18.x
    product, resin, _, lot_b = await _lot_setup(x)
    bom_id = (
        await x("mrp.bom", "search", [["product_tmpl_id.product_variant_ids", "=", product]])
    )[0]
    mo = await confirmed_mo(x, product, 1, bom_id)
    move = (await raw_moves(x, mo))[0]
    assert await _quants(x, resin) == [("A", 30.0, 2.0), ("B", 30.0, 0.0)]
    await x(
        "stock.move",
        "write",
        [move["id"]],
        {
            "move_line_ids": [
                [5, 0, 0],
                [0, 0, {"product_id": resin, "lot_id": lot_b, "quantity": 2, "picked": True}],
            ]
        },
    )
    orphans = await x(
        "stock.move.line",
        "search_read",
        [["product_id", "=", resin], ["move_id", "=", False]],
        fields=["lot_id", "quantity", "state", "production_id"],
    )
    assert [
        (o["lot_id"][1], o["quantity"], o["state"], o["production_id"][0]) for o in orphans
    ] == [("A", 2.0, False, mo)]
    assert await _quants(x, resin) == [("A", 30.0, 2.0), ("B", 30.0, 2.0)]
    await x("stock.move.line", "unlink", [orphans[0]["id"]])
    await x("mrp.production", "action_cancel", [mo])
    assert await _quants(x, resin) == [("A", 30.0, 2.0), ("B", 30.0, 0.0)]


async def test_deleting_lines_with_command_2_moves_the_reservation(odoo18: Odoo) -> None:
    x = odoo18.x
    product, resin, _, lot_b = await _lot_setup(x)
    bom_id = (await x("mrp.bom", "search", []))[0]
    mo = await confirmed_mo(x, product, 1, bom_id)
    move = (await raw_moves(x, mo))[0]
    await x(
        "stock.move",
        "write",
        [move["id"]],
        {
            "move_line_ids": [
                [2, move["move_line_ids"][0]],
                [0, 0, {"product_id": resin, "lot_id": lot_b, "quantity": 2, "picked": True}],
            ]
        },
    )
    assert await _quants(x, resin) == [("A", 30.0, 0.0), ("B", 30.0, 2.0)]
    assert (
        await x(
            "stock.move.line", "search_count", [["product_id", "=", resin], ["move_id", "=", False]]
        )
        == 0
    )
    await x("mrp.production", "action_cancel", [mo])
    assert await _quants(x, resin) == [("A", 30.0, 0.0), ("B", 30.0, 0.0)]


async def test_writing_move_quantity_adjusts_lines_and_reservation(odoo18: Odoo) -> None:
    x = odoo18.x
    product = await storable(x, "Frame")
    part = await storable(x, "Housing")
    await count_stock(x, part, 10)
    mo = await confirmed_mo(x, product, 2, await bom(x, product, [(part, 2)]))
    move = (await raw_moves(x, mo))[0]
    assert (move["quantity"], move["state"]) == (4.0, "assigned")
    await x("stock.move", "write", [move["id"]], {"quantity": 1, "picked": True})
    assert (await on_hand(x, part))["free_qty"] == 9.0
    await x("stock.move", "write", [move["id"]], {"quantity": 6})
    moved = (await raw_moves(x, mo))[0]
    assert (moved["quantity"], moved["state"], len(moved["move_line_ids"])) == (6.0, "assigned", 2)
    with pytest.raises(OdooFault, match="Invalid field 'quantity_done'"):
        await x("stock.move", "write", [move["id"]], {"quantity_done": 4})


async def test_scrap_tied_to_an_mo(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Bracket")
    sheet = await storable(x, "Sheet")
    await count_stock(x, sheet, 50)
    mo = await confirmed_mo(x, product, 5, await bom(x, product, [(sheet, 2)]))
    scrap = await x(
        "stock.scrap",
        "create",
        {
            "product_id": sheet,
            "scrap_qty": 1.5,
            "production_id": mo,
            "location_id": 8,
            "origin": "EVT-1",
        },
    )
    rows = await x(
        "stock.scrap",
        "read",
        [scrap],
        fields=["name", "state", "location_id", "scrap_location_id", "origin"],
    )
    assert (rows[0]["name"], rows[0]["state"], rows[0]["location_id"][0]) == ("New", "draft", 8)
    assert rows[0]["scrap_location_id"] == [16, "Virtual Locations/Scrap"]
    assert await x("stock.scrap", "action_validate", [scrap]) is True
    done = await x("stock.scrap", "read", [scrap], fields=["name", "state", "move_ids"])
    assert done[0]["state"] == "done" and done[0]["name"].startswith("SP/")
    assert len(done[0]["move_ids"]) == 1
    assert await on_hand(x, sheet) == {
        "qty_available": 48.5,
        "free_qty": 38.5,
        "outgoing_qty": 10.0,
        "virtual_available": 38.5,
    }
    counts = await x("mrp.production", "read", [mo], fields=["scrap_count", "scrap_ids"])
    assert (counts[0]["scrap_count"], counts[0]["scrap_ids"]) == (1, [scrap])
    assert len(await raw_moves(x, mo)) == 2
    assert await x("stock.scrap", "action_validate", [scrap]) is True
    assert (await on_hand(x, sheet))["qty_available"] == 47.0


async def test_scrap_with_insufficient_quantity_answers_a_wizard(odoo18: Odoo) -> None:
    x = odoo18.x
    product = await storable(x, "Bracket")
    sheet = await storable(x, "Sheet")
    await count_stock(x, sheet, 20)
    await confirmed_mo(x, product, 5, await bom(x, product, [(sheet, 2)]))
    scrap = await x(
        "stock.scrap", "create", {"product_id": sheet, "scrap_qty": 1000, "location_id": 8}
    )
    action = await x("stock.scrap", "action_validate", [scrap])
    assert action == {
        "name": "Sheet: Insufficient Quantity To Scrap",
        "view_mode": "form",
        "res_model": "stock.warn.insufficient.qty.scrap",
        "view_id": action["view_id"],
        "type": "ir.actions.act_window",
        "context": {
            "default_product_id": sheet,
            "default_location_id": 8,
            "default_scrap_id": scrap,
            "default_quantity": 1000.0,
            "default_product_uom_name": "Units",
        },
        "target": "new",
    }
    assert (await on_hand(x, sheet))["qty_available"] == 20.0
    values = {k.removeprefix("default_"): v for k, v in action["context"].items()}
    wizard = await x("stock.warn.insufficient.qty.scrap", "create", values)
    assert await x("stock.warn.insufficient.qty.scrap", "action_done", [wizard]) is True
    assert await on_hand(x, sheet) == {
        "qty_available": -980.0,
        "free_qty": -980.0,
        "outgoing_qty": 10.0,
        "virtual_available": -990.0,
    }
    zero = await x("stock.scrap", "create", {"product_id": sheet, "scrap_qty": 0, "location_id": 8})
    with pytest.raises(OdooFault, match="You can only enter positive quantities"):
        await x("stock.scrap", "action_validate", [zero])


async def test_scrap_of_a_lot_product_without_lot_goes_lot_less(odoo18: Odoo) -> None:
    x = odoo18.x
    glue = await storable(x, "Glue", tracking="lot")
    lot = await x("stock.lot", "create", {"name": "G1", "product_id": glue})
    await count_stock(x, glue, 20, lot)
    scrap = await x("stock.scrap", "create", {"product_id": glue, "scrap_qty": 1, "location_id": 8})
    action = await x("stock.scrap", "action_validate", [scrap])
    assert action["res_model"] == "stock.warn.insufficient.qty.scrap"
    wizard = await x(
        "stock.warn.insufficient.qty.scrap",
        "create",
        {k.removeprefix("default_"): v for k, v in action["context"].items()},
    )
    await x("stock.warn.insufficient.qty.scrap", "action_done", [wizard])
    assert await _quants(x, glue) == [("G1", 20.0, 0.0), (False, -1.0, 0.0)]
    with_lot = await x(
        "stock.scrap",
        "create",
        {"product_id": glue, "scrap_qty": 1, "lot_id": lot, "location_id": 8},
    )
    assert await x("stock.scrap", "action_validate", [with_lot]) is True
    assert await _quants(x, glue) == [("G1", 19.0, 0.0), (False, -1.0, 0.0)]


async def test_inventory_counts(odoo18: Odoo) -> None:
    x = odoo18.x
    paint = await storable(x, "Paint")
    quant = await x(
        "stock.quant",
        "create",
        {"product_id": paint, "location_id": 8, "inventory_quantity": 40},
        context={"inventory_mode": True},
    )
    assert (
        await x("stock.quant", "action_apply_inventory", [quant], context={"inventory_mode": True})
        is None
    )
    again = await x(
        "stock.quant",
        "create",
        {"product_id": paint, "location_id": 8, "inventory_quantity": 35},
        context={"inventory_mode": True},
    )
    assert again == quant
    rows = await x(
        "stock.quant",
        "read",
        [quant],
        fields=["quantity", "inventory_diff_quantity", "inventory_quantity_set"],
    )
    assert (rows[0]["quantity"], rows[0]["inventory_diff_quantity"]) == (40.0, -5.0)
    await x("stock.quant", "action_apply_inventory", [quant], context={"inventory_name": "EVT-42"})
    await x(
        "stock.quant",
        "create",
        {"product_id": paint, "location_id": 8, "inventory_quantity_auto_apply": 50},
        context={"inventory_mode": True},
    )
    assert (await on_hand(x, paint))["qty_available"] == 50.0
    moves = await x(
        "stock.move",
        "search_read",
        [["product_id", "=", paint], ["is_inventory", "=", True]],
        fields=["reference", "quantity", "location_id", "location_dest_id"],
    )
    assert [(m["reference"], m["quantity"], m["location_dest_id"][0]) for m in moves] == [
        ("Product Quantity Updated (Mitchell Admin)", 40.0, 8),
        ("EVT-42 (Mitchell Admin)", 5.0, 14),
        ("Product Quantity Updated", 15.0, 8),
    ]
    with pytest.raises(OdooFault, match="Quant's editing is restricted"):
        await x(
            "stock.quant", "write", [quant], {"product_id": paint}, context={"inventory_mode": True}
        )
    await x("stock.quant", "write", [quant], {"quantity": 999}, context={"inventory_mode": True})
    assert (await on_hand(x, paint))["qty_available"] == 999.0
    assert await x("stock.move", "search_count", [["product_id", "=", paint]]) == 3


async def test_on_hand_scope_follows_the_location_context(odoo18: Odoo) -> None:
    x = odoo18.x
    bolt = await storable(x, "Bolt")
    shelf = await x(
        "stock.location", "create", {"name": "Shelf 1", "location_id": 8, "usage": "internal"}
    )
    await count_stock(x, bolt, 5)
    quant = await x(
        "stock.quant",
        "create",
        {"product_id": bolt, "location_id": shelf, "inventory_quantity": 3},
        context={"inventory_mode": True},
    )
    await x("stock.quant", "action_apply_inventory", [quant])
    names = await x("stock.location", "read", [shelf], fields=["complete_name"])
    assert names[0]["complete_name"] == "WH/Stock/Shelf 1"
    whole = await x(
        "product.product", "read", [bolt], fields=["qty_available"], context={"location": 8}
    )
    only_shelf = await x(
        "product.product", "read", [bolt], fields=["qty_available"], context={"location": shelf}
    )
    assert (whole[0]["qty_available"], only_shelf[0]["qty_available"]) == (8.0, 3.0)
    under_stock = await x(
        "stock.quant", "search_count", [["product_id", "=", bolt], ["location_id", "child_of", 8]]
    )
    assert under_stock == 2
