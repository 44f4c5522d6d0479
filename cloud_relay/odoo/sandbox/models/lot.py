"""``stock.lot``: lots and serial numbers, unique per product (and company)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import ValidationError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.orm import Model

LOT_SEQUENCE = "stock.lot.serial"


class Lot(Model):
    """``stock.lot``."""

    _name = "stock.lot"
    _description = "Lot/Serial"
    _order = "name, id"
    _indexed = ("name", "product_id")

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Lot/Serial Number", required=True),
            "ref": f.char("Internal Reference"),
            "product_id": f.many2one("product.product", "Product", required=True),
            "company_id": f.many2one("res.company", "Company", default=1, required=version == 17),
            "product_qty": f.floating("On Hand Quantity", compute=_on_hand),
            "quant_ids": f.one2many("stock.quant", "lot_id", "Quants"),
            "note": f.text("Description"),
        }

    def _check(self, row: Mapping[str, Any]) -> None:
        name = row.get("name")
        product = row.get("product_id")
        clash = [
            other
            for other in self.env.db.lookup(self._name, "name", name)
            if other != row.get("id") and self.row(other).get("product_id") == product
        ]
        if not clash or not isinstance(product, int):
            return
        product_name = lookup.products(self.env).display_name(int(product))
        if self.env.version == 17:
            raise ValidationError(
                "The combination of serial number and product must be unique across a company."
                "\nFollowing combination contains duplicates:\n"
                f" - Product: {product_name}, Serial Number: {name}"
            )
        raise ValidationError(
            "The combination of lot/serial number and product must be unique within a company "
            "including when no company is defined.\nThe following combinations contain "
            f"duplicates:\n - Product: {product_name}, Lot/Serial Number: {name}"
        )

    def next_name(self) -> str:
        """The next name of the ``stock.lot.serial`` sequence (``0000001``...)."""
        while True:
            name = f"{self.env.db.next_number(LOT_SEQUENCE):07d}"
            if not self.env.db.lookup(self._name, "name", name):
                return name


def _on_hand(model: Model, row: Mapping[str, Any]) -> float:
    quants = lookup.quants(model.env)
    locations = lookup.locations(model.env)
    total = 0.0
    for quant_id in quants.search_ids([["lot_id", "=", row["id"]]]):
        quant = quants.row(quant_id)
        if locations.is_internal(int(quant["location_id"])):
            total += float(quant.get("quantity") or 0.0)
    return total
