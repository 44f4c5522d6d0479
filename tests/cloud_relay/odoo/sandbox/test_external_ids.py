"""External ids as a connector relies on them (contract §8): ``load`` upserts, bound in the same
transaction; ``check_object_reference`` for any user; no direct access to ``ir.model.data``."""

from __future__ import annotations

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import Odoo, OdooFault, bom, count_stock, storable


async def _mo_setup(odoo: Odoo) -> int:
    product = await storable(odoo.x, "Widget")
    part = await storable(odoo.x, "Part")
    await count_stock(odoo.x, part, 10)
    await bom(odoo.x, product, [(part, 1)])
    return product


async def test_load_creates_then_writes_the_same_record(odoo: Odoo) -> None:
    product = await _mo_setup(odoo)
    columns = ["id", "product_id/.id", "product_qty", "origin"]
    first = await odoo.connector(
        "mrp.production", "load", columns, [["relay.evt_1", str(product), "3", "EVT-1"]]
    )
    assert first["messages"] == [] and first["nextrow"] == 0
    [mo] = first["ids"]
    second = await odoo.connector(
        "mrp.production", "load", columns, [["relay.evt_1", str(product), "4", "EVT-1"]]
    )
    assert second["ids"] == [mo]
    rows = await odoo.connector("mrp.production", "read", [mo], fields=["product_qty", "origin"])
    assert (rows[0]["product_qty"], rows[0]["origin"]) == (4.0, "EVT-1")
    reference = await odoo.connector("ir.model.data", "check_object_reference", "relay", "evt_1")
    assert reference == ["mrp.production", mo]
    moves = await odoo.connector(
        "stock.move", "search_count", [["raw_material_production_id", "=", mo]]
    )
    assert moves == 1


async def test_load_prefixes_bare_ids_and_reports_errors_without_raising(odoo18: Odoo) -> None:
    product = await _mo_setup(odoo18)
    done = await odoo18.x(
        "mrp.production", "load", ["id", "product_id/.id"], [["evt_2", str(product)]]
    )
    assert await odoo18.x("ir.model.data", "check_object_reference", "__import__", "evt_2") == [
        "mrp.production",
        done["ids"][0],
    ]
    made = await odoo18.x(
        "product.product",
        "load",
        ["id", "name", "type", "is_storable"],
        [["relay.widget_2", "Widget 2", "consu", "1"]],
    )
    assert made["messages"] == []
    before = await odoo18.x("mrp.production", "search_count", [])
    failed = await odoo18.x(
        "mrp.production",
        "load",
        ["id", "product_id/id", "product_qty"],
        [["evt_3", "relay.widget_2", "1"], ["evt_4", "relay.nope", "1"]],
    )
    assert failed["ids"] is False
    assert [(m["type"], m["record"]) for m in failed["messages"]] == [("error", 1)]
    assert "relay.nope" in failed["messages"][0]["message"]
    assert await odoo18.x("mrp.production", "search_count", []) == before
    with pytest.raises(OdooFault) as caught:
        await odoo18.x("ir.model.data", "check_object_reference", "__import__", "evt_3")
    assert (caught.value.name, caught.value.message) == (
        "builtins.ValueError",
        "External ID not found in the system: __import__.evt_3",
    )


async def test_connector_cannot_touch_model_data_directly(odoo18: Odoo) -> None:
    with pytest.raises(OdooFault) as caught:
        await odoo18.connector("ir.model.data", "search_read", [], fields=["name"], limit=1)
    assert caught.value.name == "odoo.exceptions.AccessError"
    assert caught.value.message.startswith(
        "You are not allowed to access 'Model Data' (ir.model.data) records."
    )
    assert "\t- Administration/Access Rights" in caught.value.message
    values = {"module": "relay", "name": "x", "model": "res.users", "res_id": 2}
    await odoo18.x("ir.model.data", "create", values)
    with pytest.raises(OdooFault) as duplicate:
        await odoo18.x("ir.model.data", "create", values)
    assert duplicate.value.name == "odoo.exceptions.ValidationError"
    assert "Key (module, name)=(relay, x) already exists." in duplicate.value.message


async def test_mo_name_is_an_atomic_dedupe_key(odoo18: Odoo) -> None:
    product = await _mo_setup(odoo18)
    values = {"product_id": product, "product_qty": 1, "name": "EVT-0001"}
    await odoo18.connector("mrp.production", "create", values)
    with pytest.raises(OdooFault) as caught:
        await odoo18.connector("mrp.production", "create", values)
    assert caught.value.message == (
        "The operation cannot be completed: Reference must be unique per Company!"
    )
