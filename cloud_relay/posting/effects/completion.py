"""``order.completed``: the MO marked done once (closing open time logs first); with
``backorder`` the rest of the order goes on in the backorder Odoo creates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from cloud_relay.posting.effects.base import Drift, Effects, Item, Odoo, StepState, odoo_datetime
from cloud_relay.posting.effects.order import check_open, mo_key, order_name, read_order
from cloud_relay.posting.ledger import OrderLedger, same
from cloud_relay.posting.lookup import Refused
from wire.events import OrderCompleted

_WIZARDS_NOT_ANSWERED = frozenset({"mrp.batch.produce", "mrp.production.serials"})


class Completion:
    """``order.completed`` on an MO."""

    types: ClassVar[frozenset[str]] = frozenset({"order.completed"})

    def key(self, event_type: str, data: BaseModel) -> str | None:
        assert isinstance(data, OrderCompleted)
        return mo_key(data.order)

    def fold(self, items: Sequence[Item]) -> int:
        return 1

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        item = step[0]
        client = odoo.client
        ledger = state.ledger
        mo = await read_order(odoo, state.key, ledger)
        backorder = item.model(OrderCompleted).backorder
        if mo["state"] == "done" and state.intent.get("complete") == mo["id"]:
            # Marked done before a crash: only the ledger is left to write.
            return await _completed(odoo, mo, item, ledger, backorder, None)
        check_open(mo, ledger)
        if ledger.producing_written is None or ledger.producing_written <= 0:
            raise Refused(
                f"manufacturing order {mo['name']}: order.completed but no production was "
                "reported; Odoo would record the whole quantity as produced"
            )
        odoo_qty = float(mo["qty_producing"] or 0.0)
        if not same(odoo_qty, ledger.producing_written):
            raise Drift(
                f"manufacturing order {mo['name']}: quantity producing in Odoo is {odoo_qty:g}, "
                f"the relay last wrote {ledger.producing_written:g}; it was changed outside "
                "the relay. Set it back and replay"
            )
        when = odoo_datetime(item.posting.occurred_at)
        for wo_key, log_id in sorted(ledger.open_logs.items()):
            await client.write("mrp.workcenter.productivity", [log_id], {"date_end": when})
            del ledger.open_logs[wo_key]
        await state.save_intent({"complete": mo["id"], "backorder": backorder})
        if not ledger.consumed and odoo.consume_bom_when_unreported:
            await client.execute("mrp.production", "set_qty_producing", [mo["id"]])
        context: dict[str, Any] = {"skip_backorder": True, "skip_consumption": True}
        if backorder:
            context["mo_ids_to_backorder"] = [mo["id"]]
        result: Any = None
        for _ in range(3):
            result = await client.execute(
                "mrp.production", "button_mark_done", [mo["id"]], context=context
            )
            if result is not None:
                break
            # Odoo 19 may only generate the missing lot and return nothing: call again.
        if isinstance(result, dict) and result.get("res_model") in _WIZARDS_NOT_ANSWERED:
            wizard = result.get("name") or result["res_model"]
            raise Refused(
                f"manufacturing order {mo['name']}: Odoo asks for {wizard} before it can be "
                "marked done; finish it in Odoo"
            )
        done = (await client.read("mrp.production", [mo["id"]], ["state"]))[0]["state"]
        if done != "done":
            raise Refused(
                f"manufacturing order {mo['name']}: Odoo left it in state {done} after mark done"
            )
        backorder_id = (
            int(result["res_id"])
            if isinstance(result, dict)
            and result.get("res_model") == "mrp.production"
            and result.get("res_id")
            else None
        )
        return await _completed(odoo, mo, item, ledger, backorder, backorder_id)


async def _completed(
    odoo: Odoo,
    mo: dict[str, Any],
    item: Item,
    ledger: OrderLedger,
    backorder: bool,
    backorder_id: int | None,
) -> Effects:
    """The ledger of a completed MO: done, or carried on in its backorder."""
    effect: dict[str, Any] = {"mo": mo["name"], "done": True}
    if not backorder:
        ledger.done = True
        return {item.posting.pid: effect}
    base = (order_name(f"mo:{mo['name']}") or mo["name"]).rsplit("-", 1)[0]
    if backorder_id is None:
        rows = await odoo.client.search_read(
            "mrp.production",
            [["name", "=like", f"{base}-%"], ["state", "not in", ["done", "cancel"]]],
            ["name"],
            order="id",
            limit=1,
        )
        if not rows:
            ledger.done = True
            effect["backorder"] = None
            return {item.posting.pid: effect}
        backorder_id = int(rows[0]["id"])
    name = (await odoo.client.read("mrp.production", [backorder_id], ["name"]))[0]["name"]
    ledger.start_backorder(backorder_id, str(name))
    effect["backorder"] = name
    return {item.posting.pid: effect}
