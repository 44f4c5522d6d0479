"""``stock.quant``: stock per product, location and lot, reservations, inventory counts.

Negative stock is allowed everywhere, as in Odoo. In ``inventory_mode`` a ``create`` on an
existing product/location/lot reuses that quant, and ``action_apply_inventory`` books the
difference as a done move from or to the inventory-adjustment location (returning None).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.location import INVENTORY_LOCATION
from cloud_relay.odoo.sandbox.orm import Model, public
from cloud_relay.odoo.sandbox.security import STOCK_MANAGER, STOCK_USER

_INVENTORY_CREATE = {
    "product_id",
    "location_id",
    "lot_id",
    "package_id",
    "owner_id",
    "inventory_quantity",
    "inventory_quantity_auto_apply",
}
_INVENTORY_WRITE = {
    "inventory_quantity",
    "inventory_quantity_auto_apply",
    "inventory_diff_quantity",
    "inventory_date",
    "user_id",
    "inventory_quantity_set",
    "is_outdated",
    "lot_id",
    "package_id",
    "owner_id",
    "accounting_date",
    "quantity",
}
_RESTRICTED_CREATE = "Quant's creation is restricted, you can't do this operation."
_RESTRICTED_EDIT = "Quant's editing is restricted, you can't do this operation."
EPSILON = 1e-9


class Quant(Model):
    """``stock.quant``."""

    _name = "stock.quant"
    _description = "Quants"
    _indexed = ("product_id",)
    _rec_name = "product_id"
    _inverses = {"inventory_quantity_auto_apply": "_set_auto_apply"}

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "product_id": f.many2one("product.product", "Product", required=True),
            "location_id": f.many2one("stock.location", "Location", required=True),
            "lot_id": f.many2one("stock.lot", "Lot/Serial Number"),
            "company_id": f.many2one("res.company", "Company", default=1),
            "quantity": f.floating("Quantity"),
            "reserved_quantity": f.floating("Reserved Quantity"),
            "available_quantity": f.floating("Available Quantity", compute=_available),
            "inventory_quantity": f.floating("Counted Quantity"),
            "inventory_diff_quantity": f.floating("Difference", compute=_diff),
            "inventory_quantity_set": f.boolean("Inventory Quantity Set"),
            "inventory_quantity_auto_apply": f.floating("Inventoried Quantity", compute=_quantity),
            "inventory_date": f.date_field("Scheduled Date"),
            "is_outdated": f.boolean("Quantity has been moved since last count"),
            "user_id": f.many2one("res.users", "Assigned To"),
            "in_date": f.datetime_field("Incoming Date"),
            "product_uom_id": f.many2one("uom.uom", "Unit", compute=_uom),
        }

    def display_name(self, record_id: int) -> str:
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        return lookup.products(self.env).display_name(int(row["product_id"]))

    # -- RPC -----------------------------------------------------------------------------

    @public(records=False, access=("create",))
    def create(self, vals_list: Any) -> int | list[int]:
        """Plain create, or in inventory mode: count on the matching quant (reused if any)."""
        if not self._inventory_mode():
            return super().create(vals_list)
        many = isinstance(vals_list, list)
        ids = [self._count(dict(vals)) for vals in (vals_list if many else [vals_list])]
        return ids if many else ids[0]

    def _count(self, vals: dict[str, Any]) -> int:
        if any(name not in _INVENTORY_CREATE for name in vals):
            raise UserError(_RESTRICTED_CREATE)
        auto = vals.pop("inventory_quantity_auto_apply", None)
        counted = vals.pop("inventory_quantity", None)
        product = vals.get("product_id")
        location = vals.get("location_id")
        found = self.gather(product, location, vals.get("lot_id") or None, strict=True)
        record_id = found[0] if found else self.new(vals)
        if auto is not None:
            self._set_auto_apply([record_id], auto)
        elif counted is not None:
            self.update(
                [record_id],
                {
                    "inventory_quantity": counted,
                    "inventory_quantity_set": True,
                    "user_id": self.env.uid,
                    "inventory_date": self.env.now()[:10],
                },
            )
        return record_id

    @public(access=("write",))
    def action_apply_inventory(self, ids: list[int], date: Any = None) -> Any:
        """Book counted quantities as inventory moves; None when applied."""
        del date
        if self.env.version == 17 and not self.env.su and not self.env.has_group(STOCK_MANAGER):
            raise UserError("Only a stock manager can validate an inventory adjustment.")
        self.apply_inventory(ids)
        return None

    # -- hooks ---------------------------------------------------------------------------

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        if vals.get("inventory_quantity"):
            vals["inventory_quantity_set"] = True
        vals.setdefault("in_date", self.env.now())
        return vals

    def _before_write(self, ids: list[int], vals: dict[str, Any]) -> dict[str, Any]:
        if self._inventory_mode():
            counting = "inventory_quantity" in vals or "inventory_quantity_auto_apply" in vals
            if "product_id" in vals or (counting and any(n not in _INVENTORY_WRITE for n in vals)):
                raise UserError(_RESTRICTED_EDIT)
        if "inventory_quantity" in vals and "inventory_quantity_set" not in vals:
            vals["inventory_quantity_set"] = True
        return vals

    def _inventory_mode(self) -> bool:
        return bool(self.env.context.get("inventory_mode")) and (
            self.env.su or self.env.has_group(STOCK_USER)
        )

    def _set_auto_apply(self, ids: list[int], value: Any) -> None:
        if not self._inventory_mode():
            return
        self.update(ids, {"inventory_quantity": value, "inventory_quantity_set": True})
        self.apply_inventory(ids)

    # -- inventory -------------------------------------------------------------------------

    def apply_inventory(self, ids: list[int]) -> None:
        """Create and validate the moves that bring each quant to its counted quantity."""
        moves = lookup.moves(self.env)
        label = self.env.context.get("inventory_name") or "Product Quantity Updated"
        for record_id in ids:
            row = self.row(record_id)
            if not row.get("inventory_quantity_set"):
                continue
            diff = float(row.get("inventory_quantity") or 0.0) - float(row.get("quantity") or 0.0)
            if abs(diff) > EPSILON:
                name = label
                user = row.get("user_id")
                if user and user != 1:
                    name += f" ({self.env.sudo()['res.users'].display_name(user)})"
                product = int(row["product_id"])
                location = int(row["location_id"])
                source, dest = (
                    (INVENTORY_LOCATION, location) if diff > 0 else (location, INVENTORY_LOCATION)
                )
                move_id = moves.new(
                    {
                        ("inventory_name" if self.env.version >= 19 else "name"): name,
                        "product_id": product,
                        "product_uom_qty": abs(diff),
                        "location_id": source,
                        "location_dest_id": dest,
                        "is_inventory": True,
                        "picked": True,
                        "move_line_ids": [
                            [
                                0,
                                0,
                                {
                                    "product_id": product,
                                    "quantity": abs(diff),
                                    "location_id": source,
                                    "location_dest_id": dest,
                                    "lot_id": row.get("lot_id") or False,
                                    "picked": True,
                                },
                            ]
                        ],
                    }
                )
                moves.action_done([move_id])
            self.env.db.update(
                self._name,
                record_id,
                {
                    "inventory_quantity": 0.0,
                    "inventory_quantity_set": False,
                    "user_id": None,
                    "inventory_date": None,
                },
            )

    # -- stock arithmetic ------------------------------------------------------------------

    def gather(self, product: Any, location: Any, lot: int | None, *, strict: bool) -> list[int]:
        """Quants of the product at the location (its children unless strict), FIFO order."""
        if not product or not location:
            return []
        places = {location} if strict else lookup.locations(self.env).hierarchy([location])
        found = []
        for record_id in self.env.db.lookup(self._name, "product_id", product):
            row = self.row(record_id)
            if row.get("location_id") not in places:
                continue
            if (strict or lot is not None) and (row.get("lot_id") or None) != lot:
                continue
            found.append(record_id)
        return sorted(found, key=lambda i: (str(self.row(i).get("in_date") or ""), i))

    def add_available(self, product: int, location: int, quantity: float, lot: int | None) -> float:
        """Add ``quantity`` (may be negative) on the exact quant; return what is then free."""
        found = self.gather(product, location, lot, strict=True)
        if found:
            row = self.row(found[0])
            new_quantity = float(row.get("quantity") or 0.0) + quantity
            self.env.db.update(self._name, found[0], {"quantity": round(new_quantity, 6)})
            return new_quantity - float(row.get("reserved_quantity") or 0.0)
        self.new(
            {
                "product_id": product,
                "location_id": location,
                "lot_id": lot or False,
                "quantity": round(quantity, 6),
            }
        )
        return quantity

    def free_on(self, record_id: int) -> float:
        """``quantity - reserved_quantity`` of a quant."""
        row = self.row(record_id)
        return float(row.get("quantity") or 0.0) - float(row.get("reserved_quantity") or 0.0)

    def reserve(self, product: int, location: int, quantity: float, lot: int | None) -> float:
        """Reserve up to ``quantity`` on the exact quant; return how much could be reserved."""
        found = self.gather(product, location, lot, strict=True)
        if not found or quantity <= EPSILON:
            return 0.0
        taken = max(0.0, min(quantity, self.free_on(found[0])))
        if taken > EPSILON:
            reserved = float(self.row(found[0]).get("reserved_quantity") or 0.0) + taken
            self.env.db.update(self._name, found[0], {"reserved_quantity": round(reserved, 6)})
        return taken

    def unreserve(self, product: int, location: int, quantity: float, lot: int | None) -> None:
        """Release up to ``quantity`` of reservation on the exact quant."""
        for record_id in self.gather(product, location, lot, strict=True):
            reserved = float(self.row(record_id).get("reserved_quantity") or 0.0)
            released = min(reserved, quantity)
            self.env.db.update(
                self._name, record_id, {"reserved_quantity": round(reserved - released, 6)}
            )
            quantity -= released
            if quantity <= EPSILON:
                return


def _available(model: Model, row: Mapping[str, Any]) -> float:
    del model
    return float(row.get("quantity") or 0.0) - float(row.get("reserved_quantity") or 0.0)


def _diff(model: Model, row: Mapping[str, Any]) -> float:
    del model
    if not row.get("inventory_quantity_set"):
        return 0.0
    return float(row.get("inventory_quantity") or 0.0) - float(row.get("quantity") or 0.0)


def _quantity(model: Model, row: Mapping[str, Any]) -> float:
    del model
    return float(row.get("quantity") or 0.0)


def _uom(model: Model, row: Mapping[str, Any]) -> Any:
    return lookup.products(model.env).get(int(row["product_id"]), "uom_id")
