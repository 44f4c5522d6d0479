"""Quantities on a manufacturing order: production, consumption and scrap reported against it.

A run of them becomes one read of the MO, one read of its components and one ``write`` (plus
one ``load`` and one ``do_scrap`` per scrap), whatever the run's length: sums commute, so they
fold, up to a change of the finished lot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from cloud_relay.posting.effects.base import Drift, Effects, Item, Odoo, StepState
from cloud_relay.posting.effects.components import component_commands
from cloud_relay.posting.effects.order import check_open, lot_of, mo_key, read_order
from cloud_relay.posting.effects.scrap import post_scraps
from cloud_relay.posting.ledger import OrderLedger, line_key, same, split_line_key
from cloud_relay.posting.lookup import Product, Refused, many2one_id, many2one_name
from wire.events import MaterialConsumed, ProductionReported, ScrapReported


class OrderQuantities:
    """``production.reported``, ``material.consumed`` and ``scrap.reported`` on an MO."""

    types: ClassVar[frozenset[str]] = frozenset(
        {"production.reported", "material.consumed", "scrap.reported"}
    )

    def key(self, event_type: str, data: BaseModel) -> str | None:
        order = getattr(data, "order", None)
        return mo_key(order) if order else None

    def fold(self, items: Sequence[Item]) -> int:
        """Consecutive quantities, up to an event of another family or a second finished lot."""
        taken = 0
        lot: str | None = None
        for item in items:
            if item.type not in self.types:
                break
            if isinstance(item.data, ProductionReported) and item.data.lot:
                if lot is not None and item.data.lot != lot:
                    break
                lot = item.data.lot
            taken += 1
        return max(taken, 1)

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        ledger, intent = state.ledger, state.intent
        mo = await read_order(odoo, state.key, ledger)
        check_open(mo, ledger)
        produced = [
            (i, i.model(ProductionReported)) for i in step if i.type == "production.reported"
        ]
        consumed = [(i, i.model(MaterialConsumed)) for i in step if i.type == "material.consumed"]
        scraps = [i for i in step if i.type == "scrap.reported"]
        codes = {c.product for _, c in consumed}
        products = await odoo.lookup.products(codes) if codes else {}
        # Quantities in the product's unit in Odoo (converted with Odoo's factors).
        consumed = [
            (
                i,
                c.model_copy(
                    update={"qty": await odoo.in_product_unit(c.qty, c.uom, products[c.product])}
                ),
            )
            for i, c in consumed
        ]
        if any(p.uom for _, p in produced):
            finished = Product(
                many2one_id(mo["product_id"]) or 0,
                many2one_name(mo["product_id"]) or "",
                many2one_name(mo["product_id"]) or "",
                "none",
                many2one_id(mo.get("product_uom_id")) or 0,
                many2one_name(mo.get("product_uom_id")) or "",
            )
            produced = [
                (
                    i,
                    p.model_copy(
                        update={"qty": await odoo.in_product_unit(p.qty, p.uom, finished)}
                    ),
                )
                for i, p in produced
            ]
        if scraps:
            # Refuse an unknown scrapped product before anything is written.
            await odoo.lookup.products({i.model(ScrapReported).product for i in scraps})

        vals: dict[str, Any] = {}
        new_intent: dict[str, Any] = {}
        producing = ledger.produced + sum(p.qty for _, p in produced)
        lot_name = next((p.lot for _, p in reversed(produced) if p.lot), None)
        if produced:
            lot_name = await self._production(odoo, mo, ledger, intent, producing, lot_name, vals)
            new_intent["producing"] = [round(producing, 6)]

        totals = dict(ledger.consumed)
        for _, c in consumed:
            product = products[c.product]
            lot = c.lot if product.tracking != "none" else None
            if product.tracking != "none" and not lot:
                raise Refused(
                    f"product {product.code!r} is tracked by {product.tracking} in Odoo: "
                    "material.consumed needs a lot"
                )
            k = line_key(product.code, lot)
            totals[k] = totals.get(k, 0.0) + c.qty
        targets = {k: v for k, v in totals.items() if split_line_key(k)[0] in codes}
        if targets:
            commands = await component_commands(odoo, mo, products, targets, ledger, intent)
            if commands:
                vals["move_raw_ids"] = commands
            new_intent["written"] = {k: [round(v, 6)] for k, v in targets.items()}
        if scraps:
            new_intent["scraps"] = [i.event_id for i in scraps]

        await state.save_intent(new_intent)
        if vals:
            await odoo.client.write("mrp.production", [ledger.mo_id or 0], vals)
        effects: Effects = {}
        if scraps:
            effects.update(await post_scraps(odoo, scraps, mo, intent, None))
        ledger.produced = producing
        if produced:
            ledger.producing_written = round(producing, 6)
            ledger.lot = lot_name
        ledger.consumed = totals
        ledger.written.update({k: round(v, 6) for k, v in targets.items()})
        ledger.scrapped += sum(i.model(ScrapReported).qty for i in scraps)
        for item, _ in produced:
            effects[item.posting.pid] = {
                "mo": mo["name"],
                "qty_producing": ledger.producing_written,
            }
        for item, c in consumed:
            effects[item.posting.pid] = {"mo": mo["name"], "component": c.product}
        return effects

    async def _production(
        self,
        odoo: Odoo,
        mo: dict[str, Any],
        ledger: OrderLedger,
        intent: dict[str, Any],
        producing: float,
        lot_name: str | None,
        vals: dict[str, Any],
    ) -> str | None:
        """Put ``qty_producing`` (and the finished lot) into ``vals``; the lot now producing."""
        odoo_qty = float(mo["qty_producing"] or 0.0)
        if (
            ledger.producing_written is not None
            and not same(odoo_qty, ledger.producing_written)
            and not any(same(odoo_qty, v) for v in intent.get("producing", []))
        ):
            raise Drift(
                f"manufacturing order {mo['name']}: quantity producing in Odoo is "
                f"{odoo_qty:g}, the relay last wrote {ledger.producing_written:g}; "
                "it was changed outside the relay. Set it back (or settle the difference) "
                "and replay"
            )
        vals["qty_producing"] = round(producing, 6)
        if not lot_name or mo.get("product_tracking", "none") == "none":
            return ledger.lot
        if ledger.lot and lot_name != ledger.lot:
            raise Refused(
                f"manufacturing order {mo['name']} is producing lot {ledger.lot}; "
                f"lot {lot_name} needs the order completed first (with a backorder)"
            )
        product_id = many2one_id(mo["product_id"])
        assert product_id is not None
        finished = Product(product_id, "", many2one_name(mo["product_id"]) or "", "lot", 0, "")
        lot_id = (await odoo.lookup.lots(finished, {lot_name}, create=True))[lot_name]
        if lot_of(odoo, mo) != lot_id:
            field = odoo.lot_field
            vals[field] = [[6, 0, [lot_id]]] if field == "lot_producing_ids" else lot_id
        return lot_name
