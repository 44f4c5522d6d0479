"""What differs between the emulated Odoo 17, 18 and 19 (contract §10 item 3 and Part B)."""

from __future__ import annotations

import re

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import (
    Odoo,
    OdooFault,
    bom,
    confirmed_mo,
    count_stock,
    storable,
)


async def test_version_and_authentication(odoo: Odoo) -> None:
    info = odoo.handle.info
    version = await odoo.x.raw("common", "version")
    assert version["result"]["server_version"] == f"{odoo.version}.0"
    assert version["result"]["protocol_version"] == 1
    auth = await odoo.x.raw("common", "authenticate", info.database, info.login, info.api_key, {})
    assert auth["result"] == info.uid
    by_password = await odoo.x.raw("common", "login", info.database, info.login, info.password)
    assert by_password["result"] == info.uid
    wrong = await odoo.x.raw("common", "authenticate", info.database, info.login, "nope", {})
    assert wrong["result"] is False


async def test_error_envelope_code_per_version(odoo: Odoo) -> None:
    bad = odoo.x.as_user(odoo.x.uid, "wrong-key")
    with pytest.raises(OdooFault) as caught:
        await bad("product.product", "search_read", [], fields=["name"], limit=1)
    error = caught.value.body["error"]
    assert error["code"] == (0 if odoo.version == 19 else 200)
    assert error["message"] == "Odoo Server Error"
    assert error["data"]["name"] == "odoo.exceptions.AccessDenied"
    assert error["data"]["message"] == "Access Denied"
    assert error["data"]["arguments"] == ["Access Denied"]


async def test_storable_product_spelling(odoo: Odoo) -> None:
    if odoo.version == 17:
        product = await odoo.x("product.product", "create", {"name": "P", "type": "product"})
        rows = await odoo.x("product.product", "read", [product], fields=["detailed_type"])
        assert rows[0]["detailed_type"] == "product"
        with pytest.raises(OdooFault, match="Invalid field 'is_storable'"):
            await odoo.x("product.product", "create", {"name": "Q", "is_storable": True})
        return
    with pytest.raises(OdooFault) as caught:
        await odoo.x("product.product", "create", {"name": "x", "type": "product"})
    assert caught.value.name == "builtins.ValueError"
    assert caught.value.message == "Wrong value for product.template.type: 'product'"
    with pytest.raises(
        OdooFault, match=re.escape("Invalid field 'detailed_type' on model 'product.product'")
    ):
        await odoo.x("product.product", "create", {"name": "x", "detailed_type": "product"})
    product = await storable(odoo.x, "Widget", tracking="lot")
    rows = await odoo.x("product.product", "read", [product], fields=["is_storable", "tracking"])
    assert rows[0]["is_storable"] is True and rows[0]["tracking"] == "lot"


async def test_units_per_version(odoo: Odoo) -> None:
    if odoo.version == 19:
        with pytest.raises(OdooFault, match=re.escape("Object uom.category doesn't exist")):
            await odoo.x("uom.category", "search", [])
        with pytest.raises(OdooFault, match="Invalid field 'uom_po_id'"):
            await odoo.x("product.product", "search_read", [], fields=["uom_po_id"])
    else:
        assert await odoo.x("uom.category", "search_count", []) >= 1
        product = await storable(odoo.x, "P")
        rows = await odoo.x("product.product", "read", [product], fields=["uom_po_id"])
        assert rows[0]["uom_po_id"] == [1, "Units"]


async def test_finished_lot_field_per_version(odoo: Odoo) -> None:
    product = await storable(odoo.x, "Gearbox", tracking="lot")
    part = await storable(odoo.x, "Part")
    await count_stock(odoo.x, part, 10)
    mo = await confirmed_mo(odoo.x, product, 1, await bom(odoo.x, product, [(part, 1)]))
    lot = await odoo.x("stock.lot", "create", {"name": "L1", "product_id": product})
    if odoo.version == 19:
        await odoo.x("mrp.production", "write", [mo], {"lot_producing_ids": [[6, 0, [lot]]]})
        rows = await odoo.x("mrp.production", "read", [mo], fields=["lot_producing_ids"])
        assert rows[0]["lot_producing_ids"] == [lot]
        with pytest.raises(OdooFault, match="Invalid field 'lot_producing_id'"):
            await odoo.x("mrp.production", "write", [mo], {"lot_producing_id": lot})
    else:
        await odoo.x("mrp.production", "write", [mo], {"lot_producing_id": lot})
        rows = await odoo.x("mrp.production", "read", [mo], fields=["lot_producing_id"])
        assert rows[0]["lot_producing_id"] == [lot, "L1"]
    await odoo.x("mrp.production", "write", [mo], {"qty_producing": 1})
    await odoo.x("mrp.production", "set_qty_producing", [mo])
    assert await odoo.x("mrp.production", "button_mark_done", [mo]) is True
    quants = await odoo.x(
        "stock.quant",
        "search_read",
        [["product_id", "=", product], ["location_id", "=", 8]],
        fields=["lot_id", "quantity"],
    )
    assert [(q["lot_id"][0], q["quantity"]) for q in quants] == [(lot, 1.0)]


async def test_move_fields_gone_in_19(odoo: Odoo) -> None:
    fields = ["name", "scrapped", "reference"]
    if odoo.version == 19:
        with pytest.raises(
            OdooFault, match=re.escape("Invalid field 'name' on model 'stock.move'")
        ):
            await odoo.x("stock.move", "search_read", [], fields=fields)
        assert await odoo.x("stock.move", "search_read", [], fields=["reference"]) == []
    else:
        assert await odoo.x("stock.move", "search_read", [], fields=fields) == []


async def test_work_orders_per_version(odoo: Odoo) -> None:
    product = await storable(odoo.x, "Pump")
    part = await storable(odoo.x, "Impeller")
    await count_stock(odoo.x, part, 10)
    center = await odoo.x("mrp.workcenter", "create", {"name": "Assembly"})
    bom_id = await bom(
        odoo.x,
        product,
        [(part, 1)],
        operation_ids=[
            [
                0,
                0,
                {
                    "name": "Assemble",
                    "workcenter_id": center,
                    "time_cycle_manual": 15,
                    "sequence": 10,
                },
            ],
            [
                0,
                0,
                {"name": "Test", "workcenter_id": center, "time_cycle_manual": 5, "sequence": 20},
            ],
        ],
    )
    mo = await confirmed_mo(odoo.x, product, 3, bom_id)
    orders = await odoo.x(
        "mrp.workorder",
        "search_read",
        [["production_id", "=", mo]],
        fields=["state", "duration_expected"],
    )
    waiting = "blocked" if odoo.version == 19 else "pending"
    assert [(o["state"], o["duration_expected"]) for o in orders] == [
        ("ready", 45.0),
        (waiting, 15.0),
    ]
    first, second = orders[0]["id"], orders[1]["id"]
    start = await odoo.x.raw(
        "object",
        "execute_kw",
        odoo.x.database,
        odoo.x.uid,
        odoo.x.secret,
        "mrp.workorder",
        "button_start",
        [[first]],
        {},
    )
    if odoo.version == 17:
        assert start["result"] is True
    else:
        assert "result" not in start and "error" not in start
    assert await odoo.x("mrp.workorder", "button_finish", [first]) is True
    rows = await odoo.x("mrp.workorder", "read", [second], fields=["state"])
    assert rows[0]["state"] == "ready"
    if odoo.version == 19:
        with pytest.raises(OdooFault) as caught:
            await odoo.x("mrp.workorder", "button_done", [second])
        assert caught.value.name == "builtins.AttributeError"
        assert caught.value.message == "The method 'mrp.workorder.button_done' does not exist"
    else:
        assert await odoo.x("mrp.workorder", "button_done", [second]) is True


async def test_private_and_unknown_methods(odoo: Odoo) -> None:
    with pytest.raises(OdooFault) as private:
        await odoo.x("res.users.apikeys", "_generate", None, "x", False)
    assert private.value.name == "odoo.exceptions.AccessError"
    with pytest.raises(OdooFault) as unknown:
        await odoo.x("mrp.production", "no_such_method", [1])
    assert unknown.value.name == "builtins.AttributeError"
    if odoo.version == 17:
        assert private.value.message == (
            "Private methods (such as _generate) cannot be called remotely."
        )
        assert unknown.value.message == (
            "type object 'mrp.production' has no attribute 'no_such_method'"
        )
    else:
        assert private.value.message == (
            "Private methods (such as 'res.users.apikeys._generate') cannot be called remotely."
        )
        assert unknown.value.message == "The method 'mrp.production.no_such_method' does not exist"


async def test_inventory_apply_needs_manager_only_in_17(odoo: Odoo) -> None:
    product = await storable(odoo.x, "Paint")
    quant = await odoo.connector(
        "stock.quant",
        "create",
        {"product_id": product, "location_id": 8, "inventory_quantity": 5},
        context={"inventory_mode": True},
    )
    apply = odoo.connector(
        "stock.quant", "action_apply_inventory", [quant], context={"inventory_mode": True}
    )
    if odoo.version == 17:
        with pytest.raises(OdooFault, match="Only a stock manager can validate"):
            await apply
    else:
        assert await apply is None


async def test_warehouse_context_key(odoo: Odoo) -> None:
    product = await storable(odoo.x, "Bolt")
    await count_stock(odoo.x, product, 7)
    key = "warehouse" if odoo.version == 17 else "warehouse_id"
    rows = await odoo.x(
        "product.product", "read", [product], fields=["qty_available"], context={key: 1}
    )
    assert rows[0]["qty_available"] == 7.0
    other = "warehouse_id" if odoo.version == 17 else "warehouse"
    virtual = await odoo.x("stock.location", "create", {"name": "Elsewhere", "usage": "internal"})
    await odoo.x(
        "stock.quant",
        "create",
        {"product_id": product, "location_id": virtual, "inventory_quantity": 3},
        context={"inventory_mode": True},
    )
    quants = await odoo.x("stock.quant", "search", [["location_id", "=", virtual]])
    await odoo.x("stock.quant", "action_apply_inventory", quants)
    in_scope = await odoo.x(
        "product.product", "read", [product], fields=["qty_available"], context={key: 1}
    )
    ignored = await odoo.x(
        "product.product", "read", [product], fields=["qty_available"], context={other: 1}
    )
    assert in_scope[0]["qty_available"] == 7.0
    assert ignored[0]["qty_available"] == 10.0


async def test_least_privilege_connector(odoo: Odoo) -> None:
    groups_field = "group_ids" if odoo.version == 19 else "groups_id"
    rows = await odoo.x("res.users", "read", [odoo.connector.uid], fields=[groups_field])
    assert sorted(rows[0][groups_field]) == [1, 22, 33]
    for group, expected in (
        ("stock.group_stock_user", True),
        ("mrp.group_mrp_user", True),
        ("stock.group_stock_manager", False),
        ("base.group_system", False),
    ):
        assert await odoo.x("res.users", "has_group", [odoo.connector.uid], group) is expected
    with pytest.raises(OdooFault) as product:
        await storable(odoo.connector, "Nope")
    assert product.value.message == (
        "You are not allowed to create 'Product Variant' (product.product) records.\n\n"
        "This operation is allowed for the following groups:\n\t- Extra Rights/Product Creation"
        "\n\t- Inventory/Administrator\n\t- Manufacturing/Administrator\n\n"
        "Contact your administrator to request access if necessary."
    )
    widget = await storable(odoo.x, "Widget")
    with pytest.raises(OdooFault, match="You are not allowed to create 'Bill of Material'"):
        await bom(odoo.connector, widget, [])
    user = await odoo.x(
        "res.users",
        "create",
        {
            "name": "Reader",
            "login": "reader",
            "password": "reader-pass",
            groups_field: [[6, 0, [1]]],
        },
    )
    reader = odoo.x.as_user(user, "reader-pass")
    assert await reader("product.product", "search", [["id", "=", widget]]) == [widget]
    with pytest.raises(OdooFault, match="You are not allowed to access 'Manufacturing Order'"):
        await reader("mrp.production", "search_read", [], fields=["name"], limit=1)
