"""Locations, the warehouse, the manufacturing operation type and procurement groups."""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.orm import Model, sql_constraint

USAGES = ("supplier", "view", "internal", "customer", "inventory", "production", "transit")
STOCK_LOCATION = 8
INVENTORY_LOCATION = 14
PRODUCTION_LOCATION = 15
SCRAP_LOCATION = 16
MANUFACTURING_TYPE = 8
VENDOR_LOCATION = 4
RECEIPT_TYPE = 1
INTERNAL_TYPE = 7
WAREHOUSE = 1


class Location(Model):
    """``stock.location``: a tree (``location_id`` is the parent) with a usage."""

    _name = "stock.location"
    _description = "Inventory Locations"
    _order = "complete_name, id"
    _rec_name = "complete_name"
    _parent_name = "location_id"
    _indexed = ("barcode",)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Location Name", required=True),
            "complete_name": f.char("Full Location Name", compute=_complete_name),
            "location_id": f.many2one("stock.location", "Parent Location"),
            "usage": f.selection("Location Type", USAGES, default="internal", required=True),
            "active": f.boolean("Active", default=True),
            "company_id": f.many2one("res.company", "Company"),
            "barcode": f.char("Barcode"),
            "scrap_location": f.boolean("Is a Scrap Location?", versions=frozenset({17, 18})),
            "warehouse_id": f.many2one("stock.warehouse", "Warehouse", compute=_warehouse),
        }

    def _check(self, row: Any) -> None:
        barcode = row.get("barcode")
        if barcode and any(
            other != row.get("id") and self.get(other, "company_id") == row.get("company_id")
            for other in self.env.db.lookup(self._name, "barcode", barcode)
        ):
            raise sql_constraint("The barcode for a location must be unique per company!")

    def full_name(self, record_id: int) -> str:
        """``Parent/Child`` names: a view location is named alone, others under their parent."""
        row = self.row(record_id)
        parent = row.get("location_id")
        name = str(row.get("name") or "")
        if parent and row.get("usage") != "view":
            return f"{self.full_name(parent)}/{name}"
        return name

    def display_name(self, record_id: int) -> str:
        return self.full_name(record_id) if self.row_or_none(record_id) else ""

    def is_internal(self, record_id: int) -> bool:
        """Whether stock in the location counts as on hand."""
        return self.get(record_id, "usage") in ("internal", "transit")

    def bypasses_reservation(self, record_id: int) -> bool:
        """Virtual locations are never reserved from (Odoo's ``should_bypass_reservation``)."""
        return self.get(record_id, "usage") in (
            "supplier",
            "customer",
            "inventory",
            "production",
        ) or bool(self.row(record_id).get("scrap_location"))


def _complete_name(model: Model, row: Any) -> str:
    assert isinstance(model, Location)
    return model.full_name(row["id"])


def _warehouse(model: Model, row: Any) -> int | None:
    family = model.hierarchy([row["id"]], down=False)
    return WAREHOUSE if 7 in family else None


class Warehouse(Model):
    """``stock.warehouse``: one warehouse, WH, stock location 8."""

    _name = "stock.warehouse"
    _description = "Warehouse"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Warehouse", required=True),
            "code": f.char("Short Name", required=True),
            "company_id": f.many2one("res.company", "Company", required=True, default=1),
            "view_location_id": f.many2one("stock.location", "View Location"),
            "lot_stock_id": f.many2one("stock.location", "Location Stock"),
            "manufacture_steps": f.selection(
                "Manufacture", ("mrp_one_step", "pbm", "pbm_sam"), default="mrp_one_step"
            ),
            "manu_type_id": f.many2one("stock.picking.type", "Manufacturing Operation Type"),
            "active": f.boolean("Active", default=True),
        }


class PickingType(Model):
    """``stock.picking.type``: the manufacturing operation type and its backorder policy."""

    _name = "stock.picking.type"
    _description = "Picking Type"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Operation Type", required=True),
            "code": f.selection(
                "Type of Operation",
                ("incoming", "outgoing", "internal", "mrp_operation"),
                required=True,
            ),
            "sequence_code": f.char("Sequence Prefix", required=True),
            "warehouse_id": f.many2one("stock.warehouse", "Warehouse"),
            "company_id": f.many2one("res.company", "Company", default=1),
            "default_location_src_id": f.many2one("stock.location", "Default Source Location"),
            "default_location_dest_id": f.many2one(
                "stock.location", "Default Destination Location"
            ),
            "create_backorder": f.selection(
                "Create Backorder", ("ask", "always", "never"), default="ask"
            ),
            "use_create_lots": f.boolean("Create New Lots/Serial Numbers", default=True),
            "use_existing_lots": f.boolean("Use Existing Lots/Serial Numbers", default=True),
            "active": f.boolean("Active", default=True),
        }

    def display_name(self, record_id: int) -> str:
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        warehouse = row.get("warehouse_id")
        name = str(row.get("name"))
        if warehouse:
            return f"{self.env.sudo()['stock.warehouse'].display_name(warehouse)}: {name}"
        return name


class ProcurementGroup(Model):
    """``procurement.group`` (17 and 18): shared by an MO and its backorders."""

    _name = "procurement.group"
    _description = "Procurement Group"
    _versions = frozenset({17, 18})

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Reference", required=True),
            "move_type": f.selection("Delivery Type", ("direct", "one"), default="direct"),
            "mrp_production_ids": f.one2many(
                "mrp.production", "procurement_group_id", "Manufacturing Orders"
            ),
        }
