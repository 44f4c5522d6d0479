"""Stock transfers and receipts posted by the writer, and units converted with Odoo's factors."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from cloud_relay.posting.transfer import picking_name
from tests.cloud_relay.odoo.sandbox.scenario import storable
from tests.cloud_relay.posting.harness import Rig, rig

pytestmark = pytest.mark.timeout(90)
VERSIONS = pytest.mark.parametrize("version", [18, 19], ids=lambda v: f"odoo{v}")


async def _id(r: Rig, model: str, domain: list[Any]) -> int:
    found = await r.x(model, "search", domain, context={"active_test": False})
    return int(found[0])


async def _stock(r: Rig) -> int:
    return await _id(r, "stock.location", [["complete_name", "=", "WH/Stock"]])


async def _place(r: Rig, name: str, barcode: str | None = None) -> int:
    values: dict[str, Any] = {"name": name, "location_id": await _stock(r), "usage": "internal"}
    if barcode:
        values["barcode"] = barcode
    return int(await r.x("stock.location", "create", values))


async def _qty(r: Rig, product: int, location: int, lot: str | None = None) -> float:
    rows = await r.search_read(
        "stock.quant",
        [["product_id", "=", product], ["location_id", "=", location]],
        "quantity",
        "lot_id",
    )
    return sum(q["quantity"] for q in rows if lot is None or (q["lot_id"] or [0, ""])[1] == lot)


async def _pickings(r: Rig, name: str) -> list[dict[str, Any]]:
    return await r.search_read("stock.picking", [["name", "=", name]], "state", "note")


@VERSIONS
async def test_transfers_receipts_and_holds_take_effect_once(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        shelf = await _place(r, "Shelf 1")
        quarantine = await _place(r, "Quarantine", barcode="QA-HOLD")
        p = r.plant
        move = p.event(
            "stock.transferred",
            product="BOLT",
            qty=40,
            from_location="WH/Stock",
            to_location="WH/Stock/Shelf 1",
            reference="SCAN-1",
        )
        receipt = p.event(
            "stock.received", product="RESIN", qty=8, location="WH/Stock", lot="RES-9"
        )
        hold = p.event(
            "stock.transferred",
            product="RESIN",
            qty=3,
            lot="RES-9",
            from_location="WHSTOCK",
            to_location="QA-HOLD",
            reason="quality hold: colour",
        )
        await r.send(move, receipt, hold)
        await r.settle()
        assert await r.store.list_dead_letters() == []
        stock = await _stock(r)
        assert await _qty(r, line.bolt, stock) == 960
        assert await _qty(r, line.bolt, shelf) == 40
        assert await _qty(r, line.lotted, stock, "RES-9") == 5
        assert await _qty(r, line.lotted, quarantine, "RES-9") == 3
        for event in (move, receipt, hold):
            found = await _pickings(r, picking_name(event.id))
            assert [f["state"] for f in found] == ["done"]
        # note is an Html field: real Odoo 18 answers the text as a paragraph.
        note = (await _pickings(r, picking_name(hold.id)))[0]["note"]
        assert note == "<p>quality hold: colour</p>"
        # No backorder was left anywhere.
        assert await r.search_read("stock.picking", [["state", "!=", "done"]], "name") == []


@VERSIONS
async def test_a_picking_left_by_a_crash_is_validated_not_made_twice(
    tmp_path: Path, version: int
) -> None:
    async with rig(tmp_path, version, start=False) as r:
        line = await r.line()
        shelf = await _place(r, "Shelf 1")
        stock = await _stock(r)
        internal = await _id(r, "stock.picking.type", [["code", "=", "internal"]])
        p = r.plant
        crashed = p.event(
            "stock.transferred",
            product="BOLT",
            qty=5,
            from_location="WH/Stock",
            to_location="WH/Stock/Shelf 1",
        )
        done = p.event(
            "stock.transferred",
            product="BOLT",
            qty=7,
            from_location="WH/Stock",
            to_location="WH/Stock/Shelf 1",
        )
        for event, validate in ((crashed, False), (done, True)):
            move: dict[str, Any] = {
                "product_id": line.bolt,
                "product_uom_qty": event_qty(event),
                "product_uom": 1,
                "location_id": stock,
                "location_dest_id": shelf,
                "quantity": event_qty(event),
                "picked": True,
            }
            if version <= 18:
                move["name"] = "x"
            picking = await r.x(
                "stock.picking",
                "create",
                {
                    "name": picking_name(event.id),
                    "picking_type_id": internal,
                    "location_id": stock,
                    "location_dest_id": shelf,
                    "move_ids": [[0, 0, move]],
                },
            )
            if validate:
                await r.x("stock.picking", "button_validate", [picking])
        await r.send(crashed, done)
        r.task = asyncio.create_task(r.writer.run())
        await r.settle()
        assert await _qty(r, line.bolt, shelf) == 12
        for event in (crashed, done):
            assert [f["state"] for f in await _pickings(r, picking_name(event.id))] == ["done"]


def event_qty(event: Any) -> float:
    return float(json.loads(event.body)["data"]["qty"])


@VERSIONS
async def test_unknown_places_and_missing_lots_park_only_their_product(
    tmp_path: Path, version: int
) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        shelf = await _place(r, "Shelf 1")
        p = r.plant
        await r.send(
            p.event(
                "stock.transferred",
                product="RESIN",
                qty=1,
                from_location="WH/Stock",
                to_location="WH/Stock/Shelf 1",
            ),
            p.event(
                "stock.transferred",
                product="WIDGET",
                qty=1,
                from_location="WH/Stock",
                to_location="Nowhere",
            ),
            p.event(
                "stock.transferred",
                product="BOLT",
                qty=2,
                from_location="WH/Stock",
                to_location="WH/Stock/Shelf 1",
            ),
        )
        await r.settle()
        dead = {d.order_key: d.error for d in await r.store.list_dead_letters()}
        assert set(dead) == {"stock:RESIN", "stock:WIDGET"}
        assert "tracked by lot in Odoo: stock.transferred needs a lot" in dead["stock:RESIN"]
        assert "unknown location" in dead["stock:WIDGET"] and "'Nowhere'" in dead["stock:WIDGET"]
        assert await _qty(r, line.bolt, shelf) == 2


@VERSIONS
async def test_units_of_the_same_kind_convert_and_others_are_refused(
    tmp_path: Path, version: int
) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        steel = await storable(r.x, "Steel", code="STEEL")
        kg = await _id(r, "uom.uom", [["name", "=", "kg"]])
        await r.x("product.product", "write", [steel], {"uom_id": kg})
        shelf = await _place(r, "Shelf 1")
        mo, name = await r.mo(line, 10)
        p = r.plant
        await r.send(
            p.event(
                "stock.received", product="STEEL", qty=2500, uom="g", location="WH/Stock/Shelf 1"
            ),
            p.event(
                "stock.transferred",
                product="BOLT",
                qty=1,
                uom="kg",
                from_location="WH/Stock",
                to_location="WH/Stock/Shelf 1",
            ),
            p.event("material.consumed", order=name, product="BOLT", qty=2, uom="Dozens"),
        )
        await r.settle()
        assert await _qty(r, steel, shelf) == 2.5
        dead = {d.order_key: d.error for d in await r.store.list_dead_letters()}
        assert set(dead) == {"stock:BOLT"}
        assert "'kg'" in dead["stock:BOLT"] and "'Units'" in dead["stock:BOLT"]
        assert "different kinds" in dead["stock:BOLT"]
        moves = await r.search_read(
            "stock.move",
            [["raw_material_production_id", "=", mo], ["product_id", "=", line.bolt]],
            "quantity",
        )
        assert [m["quantity"] for m in moves] == [24.0]  # 2 Dozens
