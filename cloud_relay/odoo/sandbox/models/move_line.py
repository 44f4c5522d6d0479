"""``stock.move.line``: the detailed lines of a move (quantity, lot, picked) and reservations.

A line of an open move reserves its quantity on its exact quant (product, location, lot) as far
as stock allows. Deleting a line of a move releases it; detaching a line from its move
(``(3, id)`` or ``(5,)`` on ``move_line_ids``) does not, and the reservation leaks for good, as
it does in Odoo (contract A.5.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import ValidationError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.product import is_storable
from cloud_relay.odoo.sandbox.orm import Model

RESERVED = "_reserved"
"""Row key (not a field) holding how much the line holds reserved on its quant."""
_RESERVING = ("quantity", "lot_id", "location_id", "product_id", "product_uom_id")


class MoveLine(Model):
    """``stock.move.line``."""

    _name = "stock.move.line"
    _description = "Product Moves (Stock Move Line)"
    _indexed = ("move_id", "product_id")
    _rec_name = "reference"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "move_id": f.many2one("stock.move", "Stock Operation"),
            "product_id": f.many2one("product.product", "Product", required=True),
            "product_uom_id": f.many2one("uom.uom", "Unit", required=True),
            "quantity": f.floating("Quantity", digits=4),
            "quantity_product_uom": f.floating("Quantity in Product UoM", compute=_in_product_uom),
            "picked": f.boolean("Picked"),
            "lot_id": f.many2one("stock.lot", "Lot/Serial Number"),
            "lot_name": f.char("Lot/Serial Number Name"),
            "location_id": f.many2one("stock.location", "From", required=True),
            "location_dest_id": f.many2one("stock.location", "To", required=True),
            "state": f.selection("Status", _STATES, compute=_state),
            "production_id": f.many2one("mrp.production", "Production Order"),
            "reference": f.char("Reference", compute=_reference),
            "date": f.datetime_field("Date", required=True),
            "company_id": f.many2one("res.company", "Company", default=1),
            "is_inventory": f.boolean("Is Inventory", compute=_is_inventory),
            "tracking": f.selection(
                "Product with Tracking", ("serial", "lot", "none"), compute=_tracking
            ),
        }

    # -- hooks ---------------------------------------------------------------------------

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        move_id = vals.get("move_id")
        if move_id:
            move = lookup.moves(self.env).row(move_id)
            for name in ("location_id", "location_dest_id"):
                if not vals.get(name):
                    vals[name] = move.get(name)
            if not vals.get("production_id"):
                vals["production_id"] = move.get("raw_material_production_id") or move.get(
                    "production_id"
                )
            if not vals.get("product_uom_id"):
                vals["product_uom_id"] = move.get("product_uom")
        if not vals.get("product_uom_id") and vals.get("product_id"):
            vals["product_uom_id"] = lookup.products(self.env).get(
                int(vals["product_id"]), "uom_id"
            )
        vals["date"] = vals.get("date") or self.env.now()
        return vals

    def _check(self, row: Mapping[str, Any]) -> None:
        lot = row.get("lot_id")
        if not lot:
            return
        lots = lookup.lots(self.env)
        product = row.get("product_id")
        if lots.get(lot, "product_id") != product:
            product_name = lookup.products(self.env).display_name(product) if product else False
            raise ValidationError(
                f"This lot {lots.get(lot, 'name')} is incompatible with this product {product_name}"
            )

    def _after_create(self, record_id: int, vals: Mapping[str, Any]) -> None:
        self.reserve(record_id)

    def _before_write(self, ids: list[int], vals: dict[str, Any]) -> dict[str, Any]:
        if any(name in vals for name in _RESERVING):
            for record_id in ids:
                self.release(record_id)
        return vals

    def _after_write(self, ids: list[int], vals: Mapping[str, Any]) -> None:
        if any(name in vals for name in _RESERVING):
            for record_id in ids:
                self.reserve(record_id)

    def _before_unlink(self, ids: list[int]) -> None:
        for record_id in ids:
            self.release(record_id)

    def _touch(self, ids: list[int]) -> None:
        moves = {
            int(row["move_id"])
            for row in (self.row_or_none(i) for i in ids)
            if row is not None and row.get("move_id")
        }
        self.env["stock.move"]._touch(sorted(moves))

    # -- reservations ----------------------------------------------------------------------

    def holds_reservation(self, row: Mapping[str, Any]) -> bool:
        """Whether a line of this kind reserves stock (open move, storable, real location)."""
        move_id = row.get("move_id")
        if not move_id:
            return False
        move_state = lookup.moves(self.env).get(int(move_id), "state")
        if move_state in ("done", "cancel"):
            return False
        locations = lookup.locations(self.env)
        return is_storable(self.env, int(row["product_id"])) and not locations.bypasses_reservation(
            int(row["location_id"])
        )

    def reserve(self, record_id: int) -> None:
        """Reserve the line's quantity on its quant, as far as free stock allows."""
        row = self.row(record_id)
        if not self.holds_reservation(row):
            return
        quants = lookup.quants(self.env)
        taken = quants.reserve(
            int(row["product_id"]),
            int(row["location_id"]),
            self.product_quantity(row) - float(row.get(RESERVED) or 0.0),
            row.get("lot_id") or None,
        )
        if taken:
            total = float(row.get(RESERVED) or 0.0) + taken
            self.env.db.update(self._name, record_id, {RESERVED: round(total, 6)})

    def release(self, record_id: int, amount: float | None = None) -> None:
        """Give back the line's reservation (all of it, or ``amount``), if it has a move."""
        row = self.row(record_id)
        held = float(row.get(RESERVED) or 0.0)
        if not row.get("move_id") or held <= 0:
            return
        amount = held if amount is None else min(amount, held)
        lookup.quants(self.env).unreserve(
            int(row["product_id"]), int(row["location_id"]), amount, row.get("lot_id") or None
        )
        self.env.db.update(self._name, record_id, {RESERVED: round(held - amount, 6)})

    def product_quantity(self, row: Mapping[str, Any]) -> float:
        """The line's quantity in the product's unit."""
        product_uom = lookup.products(self.env).get(int(row["product_id"]), "uom_id")
        return lookup.uoms(self.env).convert(
            float(row.get("quantity") or 0.0),
            row.get("product_uom_id") or product_uom,
            product_uom,
        )


_STATES = ("draft", "waiting", "confirmed", "partially_available", "assigned", "done", "cancel")


def _state(model: Model, row: Mapping[str, Any]) -> Any:
    move = row.get("move_id")
    return lookup.moves(model.env).get(int(move), "state") if move else None


def _reference(model: Model, row: Mapping[str, Any]) -> Any:
    move = row.get("move_id")
    return lookup.moves(model.env).get(int(move), "reference") if move else None


def _is_inventory(model: Model, row: Mapping[str, Any]) -> bool:
    move = row.get("move_id")
    return bool(lookup.moves(model.env).get(int(move), "is_inventory")) if move else False


def _tracking(model: Model, row: Mapping[str, Any]) -> Any:
    return lookup.products(model.env).get(int(row["product_id"]), "tracking")


def _in_product_uom(model: Model, row: Mapping[str, Any]) -> float:
    assert isinstance(model, MoveLine)
    return model.product_quantity(row)
