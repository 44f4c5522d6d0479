"""``stock.scrap``: scrap a quantity from a location, optionally tied to an MO.

``action_validate`` returns True, or, when the location holds too little (strictly: that
location, that lot), the ``stock.warn.insufficient.qty.scrap`` action instead of an error.
There is no state guard: validating twice scraps twice, as in Odoo (contract §6).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import PythonValueError, UserError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.location import SCRAP_LOCATION, STOCK_LOCATION
from cloud_relay.odoo.sandbox.models.product import is_storable
from cloud_relay.odoo.sandbox.orm import Model, public

SCRAP_SEQUENCE = "stock.scrap"
INSUFFICIENT_VIEW_ID = 634
EPSILON = 1e-9


class Scrap(Model):
    """``stock.scrap``."""

    _name = "stock.scrap"
    _description = "Scrap"
    _order = "id desc"
    _indexed = ("production_id", "origin")

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Reference", default="New", required=True),
            "origin": f.char("Source Document"),
            "product_id": f.many2one("product.product", "Product", required=True),
            "product_uom_id": f.many2one("uom.uom", "Unit", required=True),
            "lot_id": f.many2one("stock.lot", "Lot/Serial"),
            "location_id": f.many2one("stock.location", "Source Location", required=True),
            "scrap_location_id": f.many2one("stock.location", "Scrap Location", required=True),
            "scrap_qty": f.floating("Quantity", default=1.0, required=True, digits=4),
            "state": f.selection("Status", ("draft", "done"), default="draft"),
            "date_done": f.datetime_field("Date"),
            "move_ids": f.one2many("stock.move", "scrap_id", "Moves"),
            "production_id": f.many2one("mrp.production", "Manufacturing Order"),
            "workorder_id": f.many2one("mrp.workorder", "Work Order"),
            "should_replenish": f.boolean("Replenish Quantities"),
            "company_id": f.many2one("res.company", "Company", default=1, required=True),
        }

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        product = vals.get("product_id")
        if product and not vals.get("product_uom_id"):
            vals["product_uom_id"] = lookup.products(self.env).get(int(product), "uom_id")
        if not vals.get("location_id"):
            vals["location_id"] = self._default_location(vals)
        vals["scrap_location_id"] = vals.get("scrap_location_id") or SCRAP_LOCATION
        return vals

    def _default_location(self, vals: Mapping[str, Any]) -> int:
        """17: the warehouse stock; 18/19: the MO's component (or finished) location."""
        if self.env.version == 17:
            return STOCK_LOCATION
        productions = lookup.productions(self.env)
        production = vals.get("production_id")
        if not production and vals.get("workorder_id"):
            production = lookup.workorders(self.env).get(int(vals["workorder_id"]), "production_id")
        if production:
            done = productions.get(int(production), "state") == "done"
            return int(
                productions.get(int(production), "location_dest_id" if done else "location_src_id")
            )
        return STOCK_LOCATION

    @public(access=("write",))
    def action_validate(self, ids: list[int]) -> Any:
        """Scrap now (True) or answer the insufficient-quantity wizard action."""
        if len(ids) != 1:
            raise PythonValueError(f"Expected singleton: stock.scrap{tuple(ids)!r}")
        record_id = ids[0]
        row = self.row(record_id)
        if float(row.get("scrap_qty") or 0.0) <= EPSILON:
            raise UserError("You can only enter positive quantities.")
        if self._enough(row):
            return self.do_scrap([record_id])
        products = lookup.products(self.env)
        uoms = lookup.uoms(self.env)
        product = int(row["product_id"])
        quantity = uoms.convert(
            float(row["scrap_qty"]), row.get("product_uom_id"), products.get(product, "uom_id")
        )
        return {
            "name": f"{products.display_name(product)}: Insufficient Quantity To Scrap",
            "view_mode": "form",
            "res_model": "stock.warn.insufficient.qty.scrap",
            "view_id": INSUFFICIENT_VIEW_ID,
            "type": "ir.actions.act_window",
            "context": {
                "default_product_id": product,
                "default_location_id": row["location_id"],
                "default_scrap_id": record_id,
                "default_quantity": float(quantity),
                "default_product_uom_name": uoms.display_name(int(row["product_uom_id"])),
            },
            "target": "new",
        }

    def _enough(self, row: Mapping[str, Any]) -> bool:
        product = int(row["product_id"])
        if not is_storable(self.env, product):
            return True
        quants = lookup.quants(self.env)
        available = sum(
            float(quants.get(q, "quantity") or 0.0)
            for q in quants.gather(
                product, row["location_id"], row.get("lot_id") or None, strict=True
            )
        )
        uoms = lookup.uoms(self.env)
        wanted = uoms.convert(
            float(row["scrap_qty"]),
            row.get("product_uom_id"),
            lookup.products(self.env).get(product, "uom_id"),
        )
        return available >= wanted - EPSILON

    @public(access=("write",))
    def do_scrap(self, ids: list[int]) -> bool:
        """Name the scrap from its sequence, post its move, mark it done."""
        moves = lookup.moves(self.env)
        productions = lookup.productions(self.env)
        for record_id in ids:
            row = self.row(record_id)
            name = f"SP/{self.env.db.next_number(SCRAP_SEQUENCE):05d}"
            self.env.db.update(self._name, record_id, {"name": name})
            production = row.get("production_id")
            origin = (
                row.get("origin")
                or (productions.get(int(production), "name") if production else None)
                or name
            )
            values: dict[str, Any] = {
                "origin": origin,
                "product_id": row["product_id"],
                "product_uom": row["product_uom_id"],
                "product_uom_qty": row["scrap_qty"],
                "location_id": row["location_id"],
                "location_dest_id": row["scrap_location_id"],
                "scrap_id": record_id,
                "picked": True,
                "move_line_ids": [
                    [
                        0,
                        0,
                        {
                            "product_id": row["product_id"],
                            "product_uom_id": row["product_uom_id"],
                            "quantity": row["scrap_qty"],
                            "location_id": row["location_id"],
                            "location_dest_id": row["scrap_location_id"],
                            "lot_id": row.get("lot_id") or False,
                            "picked": True,
                        },
                    ]
                ],
            }
            if self.env.version <= 18:
                values.update({"name": name, "scrapped": True})
            if production:
                finished = productions.get(int(production), "product_id") == row["product_id"]
                values["production_id" if finished else "raw_material_production_id"] = production
            move = moves.new(values)
            moves.action_done([move])
            self.update([record_id], {"state": "done", "date_done": self.env.now()})
        for record_id in ids[1:]:
            # Real 18.0: mrp's _compute_scrap_qty sets every scrap of the batch to 1, then
            # returns after recomputing the first; the moves keep the right quantities.
            if not self.row(record_id).get("bom_id"):
                self.env.db.update(self._name, record_id, {"scrap_qty": 1.0})
        return True


class InsufficientQuantityScrap(Model):
    """``stock.warn.insufficient.qty.scrap``: confirm a scrap the stock cannot cover."""

    _name = "stock.warn.insufficient.qty.scrap"
    _description = "Warn Insufficient Scrap Quantity"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "product_id": f.many2one("product.product", "Product", required=True),
            "location_id": f.many2one("stock.location", "Location", required=True),
            "scrap_id": f.many2one("stock.scrap", "Scrap", required=True),
            "quantity": f.floating("Quantity", required=True),
            "product_uom_name": f.char("Unit of Measure", required=True),
            "lot_id": f.many2one("stock.lot", "Lot/Serial"),
        }

    @public(access=("write",))
    def action_done(self, ids: list[int]) -> bool:
        """Scrap anyway: stock goes negative."""
        scraps = lookup.scraps(self.env)
        for record_id in ids:
            scraps.do_scrap([int(self.get(record_id, "scrap_id"))])
        return True

    @public(access=("write",))
    def action_cancel(self, ids: list[int]) -> bool:
        """Give up: the scrap is deleted unless the context says ``not_unlink_on_discard``."""
        if self.env.context.get("not_unlink_on_discard"):
            return True
        scraps = lookup.scraps(self.env)
        scraps.remove([int(self.get(i, "scrap_id")) for i in ids])
        return True
