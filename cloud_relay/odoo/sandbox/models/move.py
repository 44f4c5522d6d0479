"""``stock.move``: demand, reservation, the ``quantity``/``picked`` pair, and posting to quants.

``quantity`` is the sum of the lines and writing it rewrites the lines (Odoo's
``_set_quantity_done``); ``picked`` is copied to the lines. Only what is posted by
``action_done`` changes quants; negative stock is allowed and frees other reservations.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.picking_moves import picking_move_values
from cloud_relay.odoo.sandbox.models.posting import post_moves
from cloud_relay.odoo.sandbox.models.product import is_storable, tracking_of
from cloud_relay.odoo.sandbox.orm import Model

STATES = ("draft", "waiting", "confirmed", "partially_available", "assigned", "done", "cancel")
OPEN = ("waiting", "confirmed", "partially_available", "assigned")
EPSILON = 1e-9


class Move(Model):
    """``stock.move``."""

    _name = "stock.move"
    _description = "Stock Move"
    _order = "sequence, id"
    _rec_name = "reference"
    _indexed = (
        "raw_material_production_id",
        "production_id",
        "product_id",
        "scrap_id",
        "picking_id",
    )
    _inverses = {"quantity": "_set_quantity", "picked": "_set_picked"}

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        old = frozenset({17, 18})
        return {
            **super().define_fields(version),
            "name": f.char("Description", versions=old),
            "inventory_name": f.char("Inventory Name", versions=frozenset({19})),
            "reference": f.char("Reference", compute=_reference),
            "origin": f.char("Source Document"),
            "sequence": f.integer("Sequence", default=10),
            "product_id": f.many2one("product.product", "Product", required=True),
            "product_uom": f.many2one("uom.uom", "Unit", required=True),
            "product_uom_qty": f.floating("Demand", digits=4),
            "product_qty": f.floating("Real Quantity", compute=_product_qty),
            "quantity": f.floating("Quantity", compute=_quantity),
            "picked": f.boolean("Picked"),
            "state": f.selection("Status", STATES, default="draft"),
            "location_id": f.many2one("stock.location", "Source Location", required=True),
            "location_dest_id": f.many2one("stock.location", "Destination Location", required=True),
            "location_dest_usage": f.char(
                "Destination Location Type", compute=_dest_usage, versions=frozenset({19})
            ),
            "move_line_ids": f.one2many("stock.move.line", "move_id", "Operations"),
            "raw_material_production_id": f.many2one(
                "mrp.production", "Production Order for components"
            ),
            "production_id": f.many2one("mrp.production", "Production Order for finished products"),
            "bom_line_id": f.many2one("mrp.bom.line", "BoM Line"),
            "operation_id": f.many2one("mrp.routing.workcenter", "Operation To Consume"),
            "workorder_id": f.many2one("mrp.workorder", "Work Order To Consume"),
            "unit_factor": f.floating("Unit Factor", compute=_unit_factor),
            "manual_consumption": f.boolean("Manual Consumption"),
            "has_tracking": f.selection(
                "Product with Tracking", ("serial", "lot", "none"), compute=_has_tracking
            ),
            "is_inventory": f.boolean("Inventory"),
            "scrapped": f.boolean("Scrapped", versions=old),
            "scrap_id": f.many2one("stock.scrap", "Scrap operation"),
            "group_id": f.many2one("procurement.group", "Procurement Group", versions=old),
            "picking_type_id": f.many2one("stock.picking.type", "Operation Type"),
            "picking_id": f.many2one("stock.picking", "Transfer"),
            "date": f.datetime_field("Date Scheduled", required=True),
            "company_id": f.many2one("res.company", "Company", default=1),
            "lot_ids": f.many2many("stock.lot", "Serial Numbers", compute=_lots),
        }

    def display_name(self, record_id: int) -> str:
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        locations = lookup.locations(self.env)
        code = lookup.products(self.env).get(int(row["product_id"]), "default_code")
        prefix = f"{code}: " if code else ""
        source = locations.get(int(row["location_id"]), "name")
        dest = locations.get(int(row["location_dest_id"]), "name")
        return f"{prefix}{source}>{dest}"

    # -- hooks ---------------------------------------------------------------------------

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        products = lookup.products(self.env)
        product = vals.get("product_id")
        if vals.get("picking_id"):
            vals = picking_move_values(self, vals)
        if product and not vals.get("product_uom"):
            vals["product_uom"] = products.get(int(product), "uom_id")
        if product and "name" in self.fields and not vals.get("name"):
            vals["name"] = products.display_name(int(product))
        vals["date"] = vals.get("date") or self.env.now()
        productions = lookup.productions(self.env)
        raw_of = vals.get("raw_material_production_id")
        finished_of = vals.get("production_id")
        production = raw_of or finished_of
        if production:
            mo = productions.row(int(production))
            if raw_of and not vals.get("location_id"):
                vals["location_id"] = mo.get("location_src_id")
            if raw_of and not vals.get("location_dest_id"):
                vals["location_dest_id"] = mo.get("production_location_id")
            if finished_of and not vals.get("location_id"):
                vals["location_id"] = mo.get("production_location_id")
            if finished_of and not vals.get("location_dest_id"):
                vals["location_dest_id"] = mo.get("location_dest_id")
            vals["picking_type_id"] = vals.get("picking_type_id") or mo.get("picking_type_id")
            if "group_id" in self.fields:
                vals["group_id"] = vals.get("group_id") or mo.get("procurement_group_id")
            if "name" in self.fields and not vals.get("scrapped"):
                vals["name"] = mo.get("name")
            if not vals.get("scrap_id"):
                vals["origin"] = mo.get("name")
            if vals.get("state", "draft") == "draft" and mo.get("state") not in ("draft", None):
                vals["state"] = "confirmed"
        return vals

    def _touch(self, ids: list[int]) -> None:
        self.env.mark_dirty(self._name, ids)
        productions: set[int] = set()
        for row in (self.row_or_none(i) for i in ids):
            if row is not None:
                productions.update(
                    int(v)
                    for v in (row.get("raw_material_production_id"), row.get("production_id"))
                    if v
                )
        self.env.mark_dirty("mrp.production", productions)

    def recompute(self, ids: list[int]) -> None:
        """Move state from its quantity (Odoo's ``_recompute_state``), ``picked`` from lines."""
        lines = lookup.move_lines(self.env)
        for record_id in ids:
            row = self.row(record_id)
            changes: dict[str, Any] = {}
            line_ids = lines.search_ids([["move_id", "=", record_id]])
            if line_ids and row.get("state") != "done":
                picked = any(lines.get(i, "picked") for i in line_ids)
                if picked != bool(row.get("picked")):
                    changes["picked"] = picked
            if row.get("state") in OPEN:
                quantity = self.value(row, "quantity")
                demand = float(row.get("product_uom_qty") or 0.0)
                if quantity >= demand - EPSILON:
                    state = "assigned"
                elif quantity > EPSILON:
                    state = "partially_available"
                else:
                    state = "confirmed"
                if state != row.get("state"):
                    changes["state"] = state
            if changes:
                self.env.db.update(self._name, record_id, changes)

    def _set_picked(self, ids: list[int], value: Any) -> None:
        lines = lookup.move_lines(self.env)
        for record_id in ids:
            self.env.db.update(self._name, record_id, {"picked": bool(value)})
            line_ids = lines.search_ids([["move_id", "=", record_id]])
            if line_ids:
                lines.update(line_ids, {"picked": bool(value)})

    def _set_quantity(self, ids: list[int], value: Any) -> None:
        for record_id in ids:
            self.set_quantity(record_id, float(value or 0.0))

    # -- stock operations ------------------------------------------------------------------

    def product_qty(self, row: Mapping[str, Any]) -> float:
        """The demand in the product's unit."""
        product_uom = lookup.products(self.env).get(int(row["product_id"]), "uom_id")
        return lookup.uoms(self.env).convert(
            float(row.get("product_uom_qty") or 0.0), row.get("product_uom"), product_uom
        )

    def line_ids(self, record_id: int) -> list[int]:
        """The move's lines, by id."""
        return lookup.move_lines(self.env).search_ids([["move_id", "=", record_id]])

    def set_quantity(self, record_id: int, quantity: float) -> None:
        """Make the lines add up to ``quantity``: trim lines in order, add one for the rest."""
        lines = lookup.move_lines(self.env)
        row = self.row(record_id)
        remaining = quantity
        for line_id in self.line_ids(record_id):
            line_quantity = float(lines.get(line_id, "quantity") or 0.0)
            if remaining <= EPSILON:
                lines.remove([line_id])
                continue
            taken = min(remaining, line_quantity)
            if abs(taken - line_quantity) > EPSILON:
                lines.update([line_id], {"quantity": taken})
            remaining -= taken
        if remaining <= EPSILON:
            return
        base = {
            "move_id": record_id,
            "product_id": row["product_id"],
            "product_uom_id": row.get("product_uom"),
            "location_id": row.get("location_id"),
            "location_dest_id": row.get("location_dest_id"),
            "picked": bool(row.get("picked")),
        }
        if tracking_of(self.env, int(row["product_id"])) == "serial":
            for _ in range(round(remaining)):
                lines.new({**base, "quantity": 1.0})
        else:
            lines.new({**base, "quantity": round(remaining, 6)})

    def confirm(self, ids: list[int]) -> None:
        """Draft moves become confirmed (their state then follows their quantity)."""
        for record_id in ids:
            if self.get(record_id, "state") == "draft":
                self.update([record_id], {"state": "confirmed"})

    def assign(self, ids: list[int]) -> None:
        """Reserve what open moves still miss from free stock, FIFO, one line per quant."""
        self.env.flush()
        quants = lookup.quants(self.env)
        lines = lookup.move_lines(self.env)
        locations = lookup.locations(self.env)
        for record_id in ids:
            row = self.row(record_id)
            if row.get("state") not in OPEN:
                continue
            product = int(row["product_id"])
            missing = self.product_qty(row) - float(self.value(row, "quantity"))
            if missing <= EPSILON:
                continue
            location = int(row["location_id"])
            if not is_storable(self.env, product) or locations.bypasses_reservation(location):
                self.set_quantity(record_id, float(self.value(row, "quantity")) + missing)
                continue
            for quant_id in quants.gather(product, location, None, strict=False):
                free = quants.free_on(quant_id)
                if free <= EPSILON:
                    continue
                taken = min(free, missing)
                quant = quants.row(quant_id)
                same = [
                    i
                    for i in self.line_ids(record_id)
                    if lines.get(i, "location_id") == quant["location_id"]
                    and lines.get(i, "lot_id") == quant.get("lot_id")
                    and not lines.get(i, "picked")
                ]
                if same:
                    total = float(lines.get(same[0], "quantity") or 0.0) + taken
                    lines.update([same[0]], {"quantity": total})
                else:
                    lines.new(
                        {
                            "move_id": record_id,
                            "product_id": product,
                            "location_id": quant["location_id"],
                            "location_dest_id": row.get("location_dest_id"),
                            "lot_id": quant.get("lot_id") or False,
                            "quantity": taken,
                        }
                    )
                missing -= taken
                if missing <= EPSILON:
                    break

    def cancel(self, ids: list[int]) -> None:
        """Cancel open moves: their lines go, releasing what they reserved."""
        lines = lookup.move_lines(self.env)
        for record_id in ids:
            if self.get(record_id, "state") in ("done", "cancel"):
                continue
            lines.remove(self.line_ids(record_id))
            self.update([record_id], {"state": "cancel", "picked": False})

    def action_done(self, ids: list[int]) -> None:
        """Post moves: check lots, move quants line by line, mark lines and moves done."""
        post_moves(self, ids)


def _reference(model: Model, row: Mapping[str, Any]) -> Any:
    if "name" in model.fields:
        return row.get("name")
    production = row.get("raw_material_production_id") or row.get("production_id")
    if production:
        return lookup.productions(model.env).get(int(production), "name")
    if row.get("scrap_id"):
        return lookup.scraps(model.env).get(int(row["scrap_id"]), "name")
    return row.get("inventory_name")


def _product_qty(model: Model, row: Mapping[str, Any]) -> float:
    assert isinstance(model, Move)
    return model.product_qty(row)


def _quantity(model: Model, row: Mapping[str, Any]) -> float:
    lines = lookup.move_lines(model.env)
    uoms = lookup.uoms(model.env)
    total = 0.0
    for line_id in model.env.db.lookup("stock.move.line", "move_id", row["id"]):
        line = lines.row(line_id)
        total += uoms.convert(
            float(line.get("quantity") or 0.0), line.get("product_uom_id"), row.get("product_uom")
        )
    return round(total, 6)


def _dest_usage(model: Model, row: Mapping[str, Any]) -> Any:
    return lookup.locations(model.env).get(int(row["location_dest_id"]), "usage")


def _unit_factor(model: Model, row: Mapping[str, Any]) -> float:
    production = row.get("raw_material_production_id") or row.get("production_id")
    if not production:
        return 1.0
    productions = lookup.productions(model.env)
    remaining = float(productions.get(int(production), "product_qty") or 0.0) - float(
        productions.get(int(production), "qty_produced") or 0.0
    )
    return float(row.get("product_uom_qty") or 0.0) / (remaining or 1.0)


def _has_tracking(model: Model, row: Mapping[str, Any]) -> Any:
    return tracking_of(model.env, int(row["product_id"]))


def _lots(model: Model, row: Mapping[str, Any]) -> list[int]:
    lines = lookup.move_lines(model.env)
    found: list[int] = []
    for line_id in sorted(model.env.db.lookup("stock.move.line", "move_id", row["id"])):
        lot = lines.get(line_id, "lot_id")
        if lot and lot not in found:
            found.append(lot)
    return found
