"""``button_mark_done``: the §4.6 pipeline, its wizards and context keys, backorders, lots."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import (
    Odoo,
    OdooFault,
    Rpc,
    bom,
    confirmed_mo,
    count_stock,
    mo_state,
    on_hand,
    raw_moves,
    storable,
)


async def _widget_mo(
    x: Rpc, quantity: float, consumption: str = "flexible", tracking: str = "none"
) -> tuple[int, int, int]:
    """(mo, finished product, component): 2 components per unit, 100 in stock."""
    product = await storable(x, "Widget", tracking=tracking)
    part = await storable(x, "Plate")
    await count_stock(x, part, 100)
    bom_id = await bom(x, product, [(part, 2)], consumption=consumption)
    return await confirmed_mo(x, product, quantity, bom_id), product, part


async def _produce(x: Rpc, mo: int, quantity: float) -> None:
    await x("mrp.production", "write", [mo], {"qty_producing": quantity})
    assert await x("mrp.production", "set_qty_producing", [mo]) is None


async def test_full_quantity_closes_with_true(odoo: Odoo) -> None:
    mo, product, part = await _widget_mo(odoo.x, 5)
    await _produce(odoo.x, mo, 5)
    assert await odoo.x("mrp.production", "button_mark_done", [mo]) is True
    state = await mo_state(odoo.x, mo)
    assert (state["state"], state["qty_produced"], state["reservation_state"]) == (
        "done",
        5.0,
        False,
    )
    assert (await on_hand(odoo.x, product))["qty_available"] == 5.0
    assert (await on_hand(odoo.x, part))["qty_available"] == 90.0


async def test_partial_quantity_opens_the_backorder_wizard(odoo: Odoo) -> None:
    mo, _, part = await _widget_mo(odoo.x, 10)
    await _produce(odoo.x, mo, 4)
    action = await odoo.x("mrp.production", "button_mark_done", [mo])
    assert action["res_model"] == "mrp.production.backorder"
    assert action["xml_id"] == "mrp.action_mrp_production_backorder"
    context = action["context"]
    assert context["default_mrp_production_ids"] == [mo]
    assert context["default_mrp_production_backorder_line_ids"] == [
        [0, 0, {"mrp_production_id": mo, "to_backorder": True}]
    ]
    assert ("always_backorder_mo_ids" in context) is (odoo.version >= 18)
    assert (await mo_state(odoo.x, mo))["state"] == "progress"
    wizard = await odoo.x(
        "mrp.production.backorder",
        "create",
        {
            "mrp_production_ids": [[6, 0, [mo]]],
            "mrp_production_backorder_line_ids": context[
                "default_mrp_production_backorder_line_ids"
            ],
        },
    )
    result = await odoo.x("mrp.production.backorder", "action_backorder", [wizard])
    assert result["res_model"] == "mrp.production" and result["view_mode"] == "form"
    assert result["context"] == {"skip_backorder": False, "mo_ids_to_backorder": None}
    backorder = result["res_id"]
    done, follow = await mo_state(odoo.x, mo), await mo_state(odoo.x, backorder)
    assert done["name"].endswith("-001") and done["state"] == "done"
    assert (done["product_qty"], done["qty_produced"], done["backorder_sequence"]) == (4, 4, 1)
    assert follow["name"] == done["name"][:-4] + "-002"
    assert (follow["state"], follow["product_qty"], follow["reservation_state"]) == (
        "confirmed",
        6.0,
        "assigned",
    )
    moves = await raw_moves(odoo.x, backorder)
    assert [(m["product_uom_qty"], m["quantity"], m["state"]) for m in moves] == [
        (12.0, 12.0, "assigned")
    ]
    assert (await on_hand(odoo.x, part))["free_qty"] == 100 - 8 - 12


async def test_context_shortcuts_skip_the_wizard(odoo18: Odoo) -> None:
    x = odoo18.x
    mo, _, _ = await _widget_mo(x, 5)
    await _produce(x, mo, 2)
    action = await x(
        "mrp.production",
        "button_mark_done",
        [mo],
        context={"skip_backorder": True, "mo_ids_to_backorder": [mo]},
    )
    assert action["context"] == {"skip_backorder": False, "mo_ids_to_backorder": None}
    assert (await mo_state(x, action["res_id"]))["product_qty"] == 3.0
    other, _, _ = await _widget_mo(x, 5)
    await _produce(x, other, 2)
    assert (
        await x("mrp.production", "button_mark_done", [other], context={"skip_backorder": True})
        is True
    )
    state = await mo_state(x, other)
    assert (state["state"], state["product_qty"], state["qty_produced"]) == ("done", 5.0, 2.0)
    moves = await raw_moves(x, other)
    assert [(m["product_uom_qty"], m["quantity"], m["state"]) for m in moves] == [
        (10.0, 4.0, "done")
    ]


async def test_skip_redirection_answers_true_even_with_a_backorder(odoo18: Odoo) -> None:
    mo, product, _ = await _widget_mo(odoo18.x, 3)
    await _produce(odoo18.x, mo, 1)
    result = await odoo18.x(
        "mrp.production",
        "button_mark_done",
        [mo],
        context={
            "skip_backorder": True,
            "mo_ids_to_backorder": [mo],
            "skip_redirection": True,
        },
    )
    assert result is True
    open_mos = await odoo18.x(
        "mrp.production",
        "search_count",
        [["product_id", "=", product], ["state", "=", "confirmed"]],
    )
    assert open_mos == 1


@pytest.mark.parametrize("policy", ["always", "never"])
async def test_operation_type_backorder_policy(odoo: Odoo, policy: str) -> None:
    await odoo.x("stock.picking.type", "write", [8], {"create_backorder": policy})
    mo, product, _ = await _widget_mo(odoo.x, 4)
    await _produce(odoo.x, mo, 1)
    result = await odoo.x("mrp.production", "button_mark_done", [mo])
    backorders = await odoo.x(
        "mrp.production", "search", [["product_id", "=", product], ["id", "!=", mo]]
    )
    if odoo.version == 17:
        assert result["res_model"] == "mrp.production.backorder"
    elif policy == "always":
        assert result["res_id"] == backorders[0]
        assert result["context"].get("marked_as_done", False) is (odoo.version >= 19)
    else:
        assert result is True and backorders == []


async def test_quantity_zero_produces_everything_and_invents_a_lot(odoo: Odoo) -> None:
    mo, product, part = await _widget_mo(odoo.x, 3, tracking="lot")
    assert await odoo.x("mrp.production", "button_mark_done", [mo]) is True
    state = await mo_state(odoo.x, mo)
    assert (state["state"], state["qty_producing"], state["qty_produced"]) == ("done", 3.0, 3.0)
    lots = await odoo.x(
        "stock.lot", "search_read", [["product_id", "=", product]], fields=["name", "product_qty"]
    )
    assert [(lot["name"], lot["product_qty"]) for lot in lots] == [("0000001", 3.0)]
    assert (await on_hand(odoo.x, part))["qty_available"] == 94.0


async def test_consumption_warning_then_accept_cancels_unpicked(odoo: Odoo) -> None:
    x = odoo.x
    product = await storable(x, "Gearbox")
    housing = await storable(x, "Housing")
    resin = await storable(x, "Resin")
    for part in (housing, resin):
        await count_stock(x, part, 50)
    bom_id = await bom(x, product, [(housing, 1), (resin, 2)], consumption="warning")
    mo = await confirmed_mo(x, product, 2, bom_id)
    moves = await raw_moves(x, mo)
    await x("stock.move", "write", [moves[0]["id"]], {"quantity": 3, "picked": True})
    await x("mrp.production", "write", [mo], {"qty_producing": 2})
    action = await x("mrp.production", "button_mark_done", [mo])
    assert action["res_model"] == "mrp.consumption.warning"
    lines = action["context"]["default_mrp_consumption_warning_line_ids"]
    assert [
        (v["product_id"], v["product_consumed_qty_uom"], v["product_expected_qty_uom"])
        for _, _, v in lines
    ] == [(housing, 3.0, 2.0), (resin, 0.0, 4.0)]
    assert all(v["consumption"] == "warning" for _, _, v in lines)
    wizard = await x(
        "mrp.consumption.warning",
        "create",
        {
            "mrp_production_ids": [[6, 0, [mo]]],
            "mrp_consumption_warning_line_ids": lines,
        },
    )
    assert await x("mrp.consumption.warning", "action_confirm", [wizard]) is True
    after = {m["product_id"][0]: m for m in await raw_moves(x, mo)}
    assert (after[housing]["state"], after[housing]["quantity"]) == ("done", 3.0)
    assert (after[resin]["state"], after[resin]["quantity"], after[resin]["move_line_ids"]) == (
        "cancel",
        0.0,
        [],
    )
    assert (await on_hand(x, resin))["free_qty"] == 50.0


async def test_consumption_warning_set_qty_resets_to_the_bom(odoo18: Odoo) -> None:
    mo, _, part = await _widget_mo(odoo18.x, 2, consumption="strict")
    moves = await raw_moves(odoo18.x, mo)
    await odoo18.x("stock.move", "write", [moves[0]["id"]], {"quantity": 7, "picked": True})
    await odoo18.x("mrp.production", "write", [mo], {"qty_producing": 2})
    action = await odoo18.x("mrp.production", "button_mark_done", [mo])
    wizard = await odoo18.x(
        "mrp.consumption.warning",
        "create",
        {
            "mrp_production_ids": [[6, 0, [mo]]],
            "mrp_consumption_warning_line_ids": action["context"][
                "default_mrp_consumption_warning_line_ids"
            ],
        },
    )
    assert await odoo18.x("mrp.consumption.warning", "action_set_qty", [wizard]) is True
    assert (await on_hand(odoo18.x, part))["qty_available"] == 96.0


async def test_accepting_consumption_via_context_key(odoo18: Odoo) -> None:
    mo, _, part = await _widget_mo(odoo18.x, 2, consumption="strict")
    moves = await raw_moves(odoo18.x, mo)
    await odoo18.x("stock.move", "write", [moves[0]["id"]], {"quantity": 9, "picked": True})
    await odoo18.x("mrp.production", "write", [mo], {"qty_producing": 2})
    result = await odoo18.x(
        "mrp.production", "button_mark_done", [mo], context={"skip_consumption": True}
    )
    assert result is True
    assert (await on_hand(odoo18.x, part))["qty_available"] == 91.0


async def test_missing_finished_lot_fails_and_changes_nothing(odoo: Odoo) -> None:
    mo, product, part = await _widget_mo(odoo.x, 1, tracking="lot")
    await _produce(odoo.x, mo, 1)
    if odoo.version == 19:
        assert await odoo.x("mrp.production", "button_mark_done", [mo]) is True
        made = await odoo.x("mrp.production", "read", [mo], fields=["lot_producing_ids"])
        assert len(made[0]["lot_producing_ids"]) == 1
        return
    before = await on_hand(odoo.x, part)
    with pytest.raises(OdooFault) as caught:
        await odoo.x("mrp.production", "button_mark_done", [mo])
    assert caught.value.name == "odoo.exceptions.UserError"
    if odoo.version == 17:
        assert caught.value.message == (
            "You need to supply a Lot/Serial Number for product: \n - Widget"
        )
    else:
        assert (
            caught.value.message == "You need to supply a Lot/Serial Number for product:\n- Widget"
        )
    assert (await mo_state(odoo.x, mo))["state"] == "to_close"
    assert await on_hand(odoo.x, part) == before
    assert await on_hand(odoo.x, product) == {
        "qty_available": 0.0,
        "free_qty": 0.0,
        "outgoing_qty": 0.0,
        "virtual_available": 1.0,
    }


async def test_lot_tracked_components_consume_the_lots_given(odoo18: Odoo) -> None:
    x = odoo18.x
    product = await storable(x, "Gearbox")
    resin = await storable(x, "Resin", tracking="lot")
    lot_a = await x("stock.lot", "create", {"name": "A", "product_id": resin})
    lot_b = await x("stock.lot", "create", {"name": "B", "product_id": resin})
    await count_stock(x, resin, 30, lot_a)
    await count_stock(x, resin, 30, lot_b)
    mo = await confirmed_mo(x, product, 4, await bom(x, product, [(resin, 2)]))
    move = (await raw_moves(x, mo))[0]
    reserved_line = move["move_line_ids"][0]
    with pytest.raises(OdooFault, match="is incompatible with this product False"):
        await x(
            "stock.move",
            "write",
            [move["id"]],
            {"move_line_ids": [[0, 0, {"lot_id": lot_b, "quantity": 1, "picked": True}]]},
        )
    await x(
        "stock.move",
        "write",
        [move["id"]],
        {
            "move_line_ids": [
                [1, reserved_line, {"lot_id": lot_a, "quantity": 5, "picked": True}],
                [0, 0, {"product_id": resin, "lot_id": lot_b, "quantity": 3, "picked": True}],
            ]
        },
    )
    await x("mrp.production", "write", [mo], {"qty_producing": 4})
    assert await x("mrp.production", "button_mark_done", [mo]) is True
    quants = await x(
        "stock.quant",
        "search_read",
        [["product_id", "=", resin], ["location_id", "=", 8]],
        fields=["lot_id", "quantity", "reserved_quantity"],
    )
    assert [(q["lot_id"][1], q["quantity"], q["reserved_quantity"]) for q in quants] == [
        ("A", 25.0, 0.0),
        ("B", 27.0, 0.0),
    ]


async def test_missing_component_lot_fails(odoo18: Odoo) -> None:
    x = odoo18.x
    product = await storable(x, "Panel")
    catalyst = await storable(x, "Catalyst", tracking="lot")
    mo = await confirmed_mo(x, product, 2, await bom(x, product, [(catalyst, 1)]))
    move = (await raw_moves(x, mo))[0]
    assert (move["state"], move["quantity"]) == ("confirmed", 0.0)
    await x("stock.move", "write", [move["id"]], {"quantity": 2, "picked": True})
    await x("mrp.production", "write", [mo], {"qty_producing": 2})
    with pytest.raises(OdooFault, match="Lot/Serial Number for product:\n- Catalyst"):
        await x("mrp.production", "button_mark_done", [mo])


async def test_unplanned_material_and_negative_stock(odoo18: Odoo) -> None:
    x = odoo18.x
    mo, _, _ = await _widget_mo(x, 2)
    shim = await storable(x, "Shim")
    await x(
        "mrp.production",
        "write",
        [mo],
        {
            "move_raw_ids": [
                [
                    0,
                    0,
                    {"product_id": shim, "product_uom_qty": 1.5, "quantity": 1.5, "picked": True},
                ]
            ]
        },
    )
    extra = next(m for m in await raw_moves(x, mo) if m["product_id"][0] == shim)
    assert (extra["state"], extra["picked"]) == ("assigned", True)
    await _produce(x, mo, 2)
    assert await x("mrp.production", "button_mark_done", [mo]) is True
    assert await on_hand(x, shim) == {
        "qty_available": -1.5,
        "free_qty": -1.5,
        "outgoing_qty": 0.0,
        "virtual_available": -1.5,
    }


async def test_serial_product_of_two_at_quantity_zero(odoo: Odoo) -> None:
    mo, product, _ = await _widget_mo(odoo.x, 2, tracking="serial")
    result: Any = await odoo.x("mrp.production", "button_mark_done", [mo])
    if odoo.version == 17:
        # 17 makes one serial, produces 1, and asks about the other one.
        assert result["res_model"] == "mrp.production.backorder"
        assert await odoo.x("stock.lot", "search_count", [["product_id", "=", product]]) == 1
        return
    expected = "mrp.batch.produce" if odoo.version == 18 else "mrp.production.serials"
    assert result["res_model"] == expected
    assert (await mo_state(odoo.x, mo))["state"] == "confirmed"


async def test_draft_mo_components_follow_its_quantity(odoo18: Odoo) -> None:
    product = await storable(odoo18.x, "Widget")
    part = await storable(odoo18.x, "Plate")
    mo = await odoo18.x(
        "mrp.production",
        "create",
        {"product_id": product, "bom_id": await bom(odoo18.x, product, [(part, 2)])},
    )
    assert [m["product_uom_qty"] for m in await raw_moves(odoo18.x, mo)] == [2.0]
    await odoo18.x("mrp.production", "write", [mo], {"product_qty": 5})
    assert [(m["product_uom_qty"], m["state"]) for m in await raw_moves(odoo18.x, mo)] == [
        (10.0, "draft")
    ]


async def test_mark_done_on_done_mo_is_not_guarded(odoo18: Odoo) -> None:
    mo, _, _ = await _widget_mo(odoo18.x, 2)
    assert await odoo18.x("mrp.production", "button_mark_done", [mo]) is True
    await odoo18.x("mrp.production", "write", [mo], {"product_qty": 5})
    again = await odoo18.x("mrp.production", "button_mark_done", [mo])
    assert again["res_model"] == "mrp.production.backorder"
    assert await odoo18.x("mrp.production", "action_cancel", [mo]) is True
    assert (await mo_state(odoo18.x, mo))["state"] == "done"
