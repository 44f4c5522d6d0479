"""Products (``product.template``, ``product.product``) and units of measure.

Version differences (contract §2): 17 marks a storable product with ``detailed_type`` /
``type='product'``; 18 and 19 with ``type='consu'`` plus ``is_storable``, and reject the
17 spellings. 19 drops ``uom_po_id`` and ``uom.category`` (units chain by ``relative_uom_id``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.category import ALL_PRODUCTS
from cloud_relay.odoo.sandbox.models.onhand import on_hand
from cloud_relay.odoo.sandbox.orm import Model, public

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


#: The "Product Unit" decimal precision (2 digits) 19's ``uom.uom`` helpers round to.
PRODUCT_UNIT_STEP = 0.01


class Uom(Model):
    """``uom.uom``: 17/18 a ``factor`` within a category, 19 a chain of ``relative_uom_id``
    whose ``factor`` is the absolute size in root units (the meaning is reversed)."""

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
            result["sequence"] = f.integer("Sequence")
            result["relative_uom_id"] = f.many2one("uom.uom", "Reference Unit")
            result["relative_factor"] = f.floating("Contains", default=1.0)
            result["factor"] = f.floating("Absolute Quantity", compute=_absolute_factor)
            result["parent_path"] = f.char("Parent Path", compute=_parent_path)
        else:
            result["category_id"] = f.many2one("uom.category", "Category", required=True)
            result["factor"] = f.floating("Ratio", default=1.0)
            result["factor_inv"] = f.floating("Bigger Ratio", compute=_factor_inv)
            result["ratio"] = f.floating("Combined Ratio", compute=_ratio)
            result["uom_type"] = f.selection(
                "Type", ("bigger", "reference", "smaller"), default="reference"
            )
        return result

    @public(versions=frozenset({19}))
    def round(self, ids: list[int], value: float) -> float:
        """19: ``value`` rounded to the "Product Unit" decimal precision (2 digits)."""
        del ids
        return round_to(float(value), PRODUCT_UNIT_STEP)

    @public(versions=frozenset({19}))
    def compare(self, ids: list[int], value1: float, value2: float) -> int:
        """19: -1, 0 or 1 comparing two quantities at the "Product Unit" precision."""
        del ids
        difference = round_to(float(value1) - float(value2), PRODUCT_UNIT_STEP)
        return 0 if difference == 0 else (1 if difference > 0 else -1)

    @public(versions=frozenset({19}))
    def is_zero(self, ids: list[int], value: float) -> bool:
        """19: whether ``value`` rounds to zero at the "Product Unit" precision."""
        del ids
        return round_to(float(value), PRODUCT_UNIT_STEP) == 0

    def chain(self, uom_id: int) -> list[int]:
        """19: the unit and its ``relative_uom_id`` ancestors, the root last."""
        path = [uom_id]
        for _ in range(32):
            parent = self.get(path[-1], "relative_uom_id")
            if not parent:
                break
            path.append(int(parent))
        return path

    def convert(self, quantity: float, from_uom: int | None, to_uom: int | None) -> float:
        """``_compute_quantity``: 18 ``qty / from.factor * to.factor`` and a UserError across
        categories; 19 ``qty * from.factor / to.factor`` with no check at all; both rounded UP
        to the target's ``rounding``."""
        if not from_uom or not to_uom or from_uom == to_uom:
            return quantity
        from_factor = float(self.get(from_uom, "factor") or 1.0)
        to_factor = float(self.get(to_uom, "factor") or 1.0)
        if self.env.version >= 19:
            value = quantity * from_factor / to_factor
        else:
            if self.get(from_uom, "category_id") != self.get(to_uom, "category_id"):
                raise UserError(
                    f"The unit of measure {self.display_name(from_uom)} defined on the order line "
                    f"doesn't belong to the same category as the unit of measure "
                    f"{self.display_name(to_uom)} defined on the product. Please correct the unit "
                    "of measure defined on the order line or on the product. They should belong "
                    "to the same category."
                )
            value = quantity / from_factor * to_factor
        return round_up(value, float(self.get(to_uom, "rounding") or 0.01))


def _absolute_factor(model: Model, row: Mapping[str, Any]) -> float:
    factor = float(row.get("relative_factor") or 1.0)
    parent = row.get("relative_uom_id")
    for _ in range(32):
        if not parent:
            break
        factor *= float(model.get(int(parent), "relative_factor") or 1.0)
        parent = model.get(int(parent), "relative_uom_id")
    return factor


def _parent_path(model: Model, row: Mapping[str, Any]) -> str:
    path = [int(row["id"])]
    parent = row.get("relative_uom_id")
    for _ in range(32):
        if not parent:
            break
        path.append(int(parent))
        parent = model.get(int(parent), "relative_uom_id")
    return "".join(f"{i}/" for i in reversed(path))


def _factor_inv(model: Model, row: Mapping[str, Any]) -> float:
    del model
    factor = float(row.get("factor") or 0.0)
    return 1.0 / factor if factor else 0.0


def _ratio(model: Model, row: Mapping[str, Any]) -> float:
    del model
    factor = float(row.get("factor") or 1.0)
    return factor if row.get("uom_type") != "bigger" else 1.0 / factor


def round_up(value: float, rounding: float) -> float:
    """``float_round(value, precision_rounding=rounding, rounding_method='UP')``: away from
    zero to the next step, after taking off the float error of the division."""
    if rounding <= 0 or value == 0:
        return value
    normalized = value / rounding
    epsilon = 2 ** (math.log2(abs(normalized)) - 52)
    steps = math.ceil(abs(normalized) - epsilon)
    digits = max(0, -math.floor(math.log10(rounding)))
    return round(math.copysign(steps * rounding, value), digits)


def round_to(value: float, rounding: float) -> float:
    """Round half-up to a rounding step (Odoo's ``float_round``)."""
    if rounding <= 0:
        return value
    digits = max(0, -math.floor(math.log10(rounding)))
    steps = value / rounding
    rounded = math.floor(abs(steps) + 0.5 + 1e-9) * rounding
    return round(math.copysign(rounded, steps), digits)
