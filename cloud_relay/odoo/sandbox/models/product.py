"""Products (``product.template``, ``product.product``) and units of measure.

Version differences (contract §2): 17 marks a storable product with ``detailed_type`` /
``type='product'``; 18 and 19 with ``type='consu'`` plus ``is_storable``, and reject the
17 spellings. 19 drops ``uom_po_id`` and ``uom.category`` (units chain by ``relative_uom_id``).
"""

from __future__ import annotations

import math
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup, uom_convert
from cloud_relay.odoo.sandbox.models.category import ALL_PRODUCTS
from cloud_relay.odoo.sandbox.models.onhand import on_hand
from cloud_relay.odoo.sandbox.orm import Model

TRACKING = ("serial", "lot", "none")
QUANTITY_FIELDS = ("qty_available", "free_qty", "virtual_available", "incoming_qty", "outgoing_qty")


def is_storable(env: Any, product_id: int) -> bool:
    """Whether stock is kept for the product (17: type 'product'; 18+: consu + is_storable)."""
    product = lookup.products(env)
    if env.version == 17:
        return bool(product.get(product_id, "type") == "product")
    return bool(
        product.get(product_id, "type") == "consu" and product.get(product_id, "is_storable")
    )


def tracking_of(env: Any, product_id: int) -> str:
    """``none``, ``lot`` or ``serial``."""
    return str(lookup.products(env).get(product_id, "tracking") or "none")


def _quantity(name: str) -> f.Field:
    def compute(model: Model, row: Any) -> float:
        product_id = row["id"]
        if model._name == "product.template":
            variants = lookup.products(model.env).search_ids([["product_tmpl_id", "=", row["id"]]])
            return sum(on_hand(model.env, v)[name] for v in variants)
        return on_hand(model.env, product_id)[name]

    return f.floating(name, compute=compute)


class ProductTemplate(Model):
    """``product.template``: name, type, storability, tracking, unit."""

    _name = "product.template"
    _description = "Product"
    _order = "name, id"
    _orders = {18: "is_favorite desc, name", 19: "is_favorite desc, name"}
    _inverses = {"default_code": "_set_default_code"}

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        types = ("consu", "service", "product") if version == 17 else ("consu", "service", "combo")
        result = {
            **super().define_fields(version),
            "name": f.char("Name", required=True, translate=True),
            "type": f.selection("Product Type", types, default="consu"),
            "categ_id": f.many2one(
                "product.category", "Product Category", required=True, default=ALL_PRODUCTS
            ),
            "tracking": f.selection("Tracking", TRACKING, default="none"),
            "uom_id": f.many2one(
                "uom.uom", "Unit" if version >= 19 else "Unit of Measure", required=True, default=1
            ),
            "active": f.boolean("Active", default=True),
            "company_id": f.many2one("res.company", "Company"),
            "description": f.text("Description"),
            "list_price": f.floating("Sales Price", default=1.0),
            "product_variant_ids": f.one2many("product.product", "product_tmpl_id", "Products"),
            "default_code": f.char("Internal Reference", compute=_template_code),
            "bom_ids": f.one2many("mrp.bom", "product_tmpl_id", "Bill of Materials"),
        }
        if version == 17:
            result["detailed_type"] = f.selection("Product Type", types)
        else:
            result["is_storable"] = f.boolean("Track Inventory", default=False)
            result["is_favorite"] = f.boolean("Favorite", default=False)
        if version >= 19:
            result["uom_ids"] = f.many2many("uom.uom", "Packagings")
        else:
            result["uom_po_id"] = f.many2one(
                "uom.uom",
                "Purchase Unit",
                required=True,
                default=lambda env, vals: vals.get("uom_id") or 1,
            )
        for name in QUANTITY_FIELDS:
            result[name] = _quantity(name)
        return result

    def display_name(self, record_id: int) -> str:
        """``[code] name`` when the (single) variant has an internal reference."""
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        code = self.value(row, "default_code")
        return f"[{code}] {row['name']}" if code else str(row["name"])

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        return self._normalize(vals)

    def _before_write(self, ids: list[int], vals: dict[str, Any]) -> dict[str, Any]:
        return self._normalize(vals)

    def _normalize(self, vals: dict[str, Any]) -> dict[str, Any]:
        """Keep 17's ``type``/``detailed_type`` in step and reset tracking when not storable."""
        if self.env.version == 17:
            detailed, kind = vals.get("detailed_type"), vals.get("type")
            if detailed:
                vals["type"] = detailed
            elif kind:
                vals["detailed_type"] = kind
            if "type" in vals and vals["type"] != "product":
                vals["tracking"] = "none"
        elif ("is_storable" in vals or "type" in vals) and (
            vals.get("type", "consu") != "consu" or not vals.get("is_storable", True)
        ):
            vals["is_storable"] = False
            vals["tracking"] = "none"
        return vals

    def _after_create(self, record_id: int, vals: Any) -> None:
        if self.env.context.get("inherits_child") == "product.product":
            return
        self.env["product.product"].new(
            {"product_tmpl_id": record_id, "default_code": vals.get("default_code") or False}
        )

    def _set_default_code(self, ids: list[int], value: Any) -> None:
        products = self.env["product.product"]
        for record_id in ids:
            products.update(
                products.search_ids([["product_tmpl_id", "=", record_id]]), {"default_code": value}
            )


def _template_code(model: Model, row: Any) -> Any:
    variants = lookup.products(model.env).search_ids([["product_tmpl_id", "=", row["id"]]])
    if len(variants) != 1:
        return None
    return lookup.products(model.env).get(variants[0], "default_code")


class Product(Model):
    """``product.product``: a variant; template fields are read and written through it."""

    _name = "product.product"
    _description = "Product Variant"
    _order = "default_code, name, id"
    _orders = {
        18: "is_favorite desc, default_code, name, id",
        19: "is_favorite desc, default_code, name, id",
    }
    _inherits = {"product.template": "product_tmpl_id"}
    _indexed = ("default_code", "product_tmpl_id")

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        result = {
            **super().define_fields(version),
            "product_tmpl_id": f.many2one("product.template", "Product Template", required=True),
            "default_code": f.char("Internal Reference"),
            "barcode": f.char("Barcode"),
            "active": f.boolean("Active", default=True),
        }
        for name in QUANTITY_FIELDS:
            result[name] = _quantity(name)
        return result

    def display_name(self, record_id: int) -> str:
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        name = self.value(row, "name")
        code = row.get("default_code")
        return f"[{code}] {name}" if code else str(name)

    def create_records(self, vals_list: Any) -> list[int]:
        child = self.with_child_context()
        return Model.create_records(child, vals_list)

    def with_child_context(self) -> Product:
        """This model in an env that tells the template not to make a variant of its own."""
        return Product(self.env.with_context(inherits_child=self._name))


class UomCategory(Model):
    """``uom.category`` (17 and 18 only)."""

    _name = "uom.category"
    _description = "Product UoM Categories"
    _versions = frozenset({17, 18})

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Unit of Measure Category", required=True),
        }


class Uom(Model):
    """``uom.uom``: 17/18 factor within a category, 19 a chain of ``relative_uom_id``."""

    _name = "uom.uom"
    _description = "Product Unit of Measure"
    _order = "name"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        result = {
            **super().define_fields(version),
            "name": f.char("Unit", required=True),
            "rounding": f.floating("Rounding Precision", default=0.01),
            "active": f.boolean("Active", default=True),
        }
        if version >= 19:
            result["relative_uom_id"] = f.many2one("uom.uom", "Reference Unit")
            result["relative_factor"] = f.floating("Contains", default=1.0)
            result["factor"] = f.floating("Absolute Quantity", compute=_absolute_factor)
        else:
            result["category_id"] = f.many2one("uom.category", "Category", required=True)
            result["factor"] = f.floating("Ratio", default=1.0)
            result["uom_type"] = f.selection(
                "Type", ("bigger", "reference", "smaller"), default="reference"
            )
        return result

    def ratio(self, uom_id: int) -> tuple[int, float]:
        """(root of the unit's family, reference units per one of this unit)."""
        if self.env.version >= 19:
            ratio, current = 1.0, uom_id
            for _ in range(20):
                parent = self.get(current, "relative_uom_id")
                if not parent:
                    return current, ratio
                ratio *= float(self.get(current, "relative_factor") or 1.0)
                current = parent
            return current, ratio
        factor = float(self.get(uom_id, "factor") or 1.0)
        return int(self.get(uom_id, "category_id") or 0), 1.0 / factor

    def convert(self, quantity: float, from_uom: int | None, to_uom: int | None) -> float:
        """``quantity`` of ``from_uom`` expressed in ``to_uom`` (see :mod:`.uom_convert`)."""
        if not from_uom or not to_uom or from_uom == to_uom:
            return quantity
        return uom_convert.convert(self, quantity, from_uom, to_uom)


def round_to(value: float, rounding: float) -> float:
    """Round half-up to a rounding step (Odoo's ``float_round``)."""
    if rounding <= 0:
        return value
    digits = max(0, -math.floor(math.log10(rounding)))
    steps = value / rounding
    rounded = math.floor(abs(steps) + 0.5 + 1e-9) * rounding
    return round(math.copysign(rounded, steps), digits)


def _absolute_factor(model: Model, row: Any) -> float:
    assert isinstance(model, Uom)
    return uom_convert.absolute_factor(model, int(row["id"]))
