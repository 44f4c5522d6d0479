"""Transfers and receipts (``stock.picking``) as measured live on Odoo 18 and 19.

Each test names the behaviour the relay relies on: two calls per transfer, the backorder
contexts, the unique ``name`` as duplicate guard, reservation from child locations, lots on
receipts, and a re-``load`` of a done picking failing.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import Odoo, OdooFault, Rpc, count_stock, storable

STOCK, VENDORS, RECEIPTS, INTERNAL = 8, 4, 1, 7


def _move(odoo: Odoo, product: int, qty: float, src: int, dest: int, **extra: Any) -> list[Any]:
    values: dict[str, Any] = {
        "product_id": product,
        "product_uom_qty": qty,
        "product_uom": 1,
        "location_id": src,
        "location_dest_id": dest,
        **extra,
    }
    if odoo.version <= 18:
        values["name"] = "move"
    return [0, 0, values]


async def _bin(x: Rpc, name: str = "BIN") -> int:
    return int(
        await x(
            "stock.location",
            "create",
            {"name": name, "location_id": STOCK, "usage": "internal", "barcode": name},
        )
    )


async def _quant(x: Rpc, product: int, location: int) -> tuple[float, float]:
    rows = await x(
        "stock.quant",
        "search_read",
        [["product_id", "=", product], ["location_id", "=", location]],
        fields=["quantity", "reserved_quantity"],
    )
    return (
        sum(r["quantity"] for r in rows),
        sum(r["reserved_quantity"] for r in rows),
    )


async def _picking(x: Rpc, picking: int) -> dict[str, Any]:
    rows = await x(
        "stock.picking",
        "read",
        [picking],
        ["name", "state", "origin", "backorder_ids", "move_ids"],
    )
    return dict(rows[0])


async def _transfer(
    odoo: Odoo, product: int, qty: float, dest: int, *, picked: float, **values: Any
) -> int:
    move = _move(odoo, product, qty, STOCK, dest, quantity=picked, picked=True)
    return int(
        await odoo.x(
            "stock.picking",
            "create",
            {
                "picking_type_id": INTERNAL,
                "location_id": STOCK,
                "location_dest_id": dest,
                "move_ids": [move],
                **values,
            },
        )
    )


async def test_locations_are_found_by_full_name_and_barcode(odoo: Odoo) -> None:
    x = odoo.x
    by_name = await x("stock.location", "search", [["complete_name", "=", "WH/Stock"]])
    assert by_name == await x("stock.location", "search", [["barcode", "=", "WHSTOCK"]])
    shelf = await _bin(x, "SHELF-1")
    assert (await x("stock.location", "read", [shelf], ["complete_name"]))[0][
        "complete_name"
    ] == "WH/Stock/SHELF-1"
    with pytest.raises(OdooFault, match="barcode for a location must be unique per company"):
        await _bin(x, "SHELF-1")
    vendors = (await x("stock.location", "read", [VENDORS], ["complete_name"]))[0]
    assert vendors["complete_name"] == ("Vendors" if odoo.version >= 19 else "Partners/Vendors")


async def test_a_transfer_takes_two_calls_and_moves_the_stock(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Bolt")
    await count_stock(x, product, 10)
    shelf = await _bin(x)
    picking = await _transfer(odoo, product, 4, shelf, picked=4, origin="EV-1")
    assert (await _picking(x, picking))["state"] == "assigned"
    assert (await _picking(x, picking))["name"].startswith("WH/INT/")
    assert await x("stock.picking", "button_validate", [picking]) is True
    assert (await _picking(x, picking))["state"] == "done"
    assert await _quant(x, product, STOCK) == (6.0, 0.0)
    assert await _quant(x, product, shelf) == (4.0, 0.0)


async def test_18_requires_a_move_name_in_a_picking(odoo18: Odoo) -> None:
    product = await storable(odoo18.x, "Bolt")
    move = _move(odoo18, product, 1, STOCK, STOCK)
    del move[2]["name"]
    with pytest.raises(OdooFault, match=r"Field: Description \(name\)"):
        await odoo18.x(
            "stock.picking",
            "create",
            {"picking_type_id": INTERNAL, "location_dest_id": STOCK, "move_ids": [move]},
        )


async def test_the_picking_name_is_unique_per_company(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Bolt")
    await count_stock(x, product, 10)
    await _transfer(odoo, product, 1, STOCK, picked=1, name="relay/EV-1")
    with pytest.raises(OdooFault, match="Reference must be unique per company!"):
        await _transfer(odoo, product, 1, STOCK, picked=1, name="relay/EV-1")
    found = await x("stock.picking", "search_read", [["name", "=", "relay/EV-1"]], fields=["id"])
    assert len(found) == 1


async def test_backorder_contexts(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Bolt")
    await count_stock(x, product, 100)
    shelf = await _bin(x)
    wizard = await _transfer(odoo, product, 4, shelf, picked=1, origin="W")
    action = await x("stock.picking", "button_validate", [wizard])
    assert action["res_model"] == "stock.backorder.confirmation"
    assert action["view_id"] == (660 if odoo.version >= 19 else 626)
    assert (await _picking(x, wizard))["state"] == "assigned"

    skipped = await _transfer(odoo, product, 4, shelf, picked=1, origin="S")
    assert await x("stock.picking", "button_validate", [skipped], context={"skip_backorder": True})
    done = await _picking(x, skipped)
    assert done["state"] == "done" and len(done["backorder_ids"]) == 1
    backorder = await _picking(x, done["backorder_ids"][0])
    assert backorder["origin"] == "S" and backorder["state"] == "assigned"

    closed = await _transfer(odoo, product, 4, shelf, picked=1, origin="C")
    context = {"skip_backorder": True, "picking_ids_not_to_backorder": [closed]}
    assert await x("stock.picking", "button_validate", [closed], context=context) is True
    done = await _picking(x, closed)
    assert done["state"] == "done" and done["backorder_ids"] == []
    moves = await x("stock.move", "read", done["move_ids"], ["quantity", "product_uom_qty"])
    assert [(m["quantity"], m["product_uom_qty"]) for m in moves] == [(1.0, 4.0)]


async def test_nothing_reserved_nothing_entered_is_refused_per_version(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Empty")
    move = _move(odoo, product, 2, STOCK, STOCK)
    picking = await x(
        "stock.picking",
        "create",
        {"picking_type_id": INTERNAL, "location_dest_id": STOCK, "move_ids": [move]},
    )
    text = "Transfer trouble alert" if odoo.version >= 19 else "no quantities are reserved"
    with pytest.raises(OdooFault, match=text):
        await x("stock.picking", "button_validate", [picking])


async def test_forcing_without_stock_makes_a_negative_quant(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Missing")
    shelf = await _bin(x)
    picking = await _transfer(odoo, product, 2, shelf, picked=2)
    assert await x("stock.picking", "button_validate", [picking]) is True
    assert await _quant(x, product, STOCK) == (-2.0, 0.0)


async def test_a_move_from_a_parent_reserves_in_its_children_its_destination_too(
    odoo: Odoo,
) -> None:
    x = odoo.x
    product = await storable(x, "Bolt")
    shelf = await _bin(x)
    await count_stock(x, product, 10)
    first = await _transfer(odoo, product, 10, shelf, picked=10)
    assert await x("stock.picking", "button_validate", [first]) is True
    move = _move(odoo, product, 6, STOCK, shelf)
    second = await x(
        "stock.picking",
        "create",
        {"picking_type_id": INTERNAL, "location_dest_id": shelf, "move_ids": [move]},
    )
    assert await x("stock.picking", "action_confirm", [second]) is True
    assert await _quant(x, product, shelf) == (10.0, 6.0)


async def test_a_lot_tracked_receipt_needs_lots_and_creates_them_by_name(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Resin", tracking="lot")
    move = _move(odoo, product, 8, VENDORS, STOCK)
    receipt = await x(
        "stock.picking",
        "create",
        {"picking_type_id": RECEIPTS, "location_id": VENDORS, "move_ids": [move]},
    )
    assert (await _picking(x, receipt))["name"].startswith("WH/IN/")
    assert await x("stock.picking", "action_confirm", [receipt]) is True
    with pytest.raises(OdooFault, match="You need to supply a Lot/Serial Number for product"):
        await x("stock.picking", "button_validate", [receipt])
    move_id = (await _picking(x, receipt))["move_ids"][0]
    line = (await x("stock.move", "read", [move_id], ["move_line_ids"]))[0]["move_line_ids"][0]
    lines: list[Any] = [[2, line]]
    for lot, qty in (("LOT-A", 5), ("LOT-B", 3)):
        lines.append(
            [
                0,
                0,
                {
                    "product_id": product,
                    "lot_name": lot,
                    "quantity": qty,
                    "location_id": VENDORS,
                    "location_dest_id": STOCK,
                    "picked": True,
                },
            ]
        )
    assert await x("stock.move", "write", [move_id], {"move_line_ids": lines}) is True
    assert await x("stock.picking", "button_validate", [receipt]) is True
    lots = await x(
        "stock.lot", "search_read", [["product_id", "=", product]], fields=["name", "product_qty"]
    )
    assert sorted((r["name"], r["product_qty"]) for r in lots) == [("LOT-A", 5.0), ("LOT-B", 3.0)]


async def test_reloading_a_done_picking_fails(odoo: Odoo) -> None:
    """``load`` upserts a picking by external id while it is open, and fails once it is done
    (sub-record paths such as ``move_ids/id`` are another matter; the moves are written)."""
    x = odoo.x
    product = await storable(x, "Bolt")
    await count_stock(x, product, 10)
    shelf = await _bin(x)
    fields = ["id", "picking_type_id/.id", "location_id/.id", "location_dest_id/.id", "origin"]
    row = ["ctr.pick1", str(INTERNAL), str(STOCK), str(shelf), "LOADPICK"]
    first = await x("stock.picking", "load", fields, [row])
    assert first["messages"] == [] and len(first["ids"]) == 1
    again = await x("stock.picking", "load", fields, [row])
    assert again["ids"] == first["ids"]
    picking = first["ids"][0]
    move = _move(odoo, product, 1, STOCK, shelf)
    assert await x("stock.picking", "write", [picking], {"move_ids": [move]}) is True
    assert (await _picking(x, picking))["state"] == "draft"
    assert await x("stock.picking", "action_confirm", [picking]) is True
    assert await x("stock.picking", "button_validate", [picking]) is True
    third = await x("stock.picking", "load", fields, [row])
    assert third["ids"] is False
    assert third["messages"][0]["message"] == (
        "Changing the operation type of this record is forbidden at this point."
    )


async def test_a_picking_note_is_html(odoo: Odoo) -> None:
    """Real 18 answers a plain-text note as a paragraph (an Html field)."""
    x = odoo.x
    product = await storable(x, "Bolt")
    await count_stock(x, product, 1)
    picking = await _transfer(odoo, product, 1, STOCK, picked=1, note="hold: colour")
    rows = await x("stock.picking", "read", [picking], ["note"])
    assert rows[0]["note"] == "<p>hold: colour</p>"
