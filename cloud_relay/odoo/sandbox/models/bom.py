"""Bills of materials: ``mrp.bom``, ``mrp.bom.line`` and operations (``mrp.routing.workcenter``).

The BOM takes a template, its lines take variants. ``product_uom_id`` of a BOM defaults to the
first unit by id (Odoo only copies the product's unit in an onchange); lines default to their
product's unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import UserError, ValidationError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.orm import Model, sql_constraint

CONSUMPTION = ("flexible", "warning", "strict")


class Bom(Model):
    """``mrp.bom``."""

    _name = "mrp.bom"
    _description = "Bill of Material"
    _order = "sequence, id"
    _rec_name = "product_tmpl_id"
    _indexed = ("product_tmpl_id",)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "code": f.char("Reference"),
            "active": f.boolean("Active", default=True),
            "type": f.selection("BoM Type", ("normal", "phantom"), default="normal", required=True),
            "product_tmpl_id": f.many2one("product.template", "Product", required=True),
            "product_id": f.many2one("product.product", "Product Variant"),
            "product_qty": f.floating("Quantity", default=1.0, required=True, digits=4),
            "product_uom_id": f.many2one("uom.uom", "Unit", default=1, required=True),
            "sequence": f.integer("Sequence"),
            "bom_line_ids": f.one2many("mrp.bom.line", "bom_id", "BoM Lines"),
            "operation_ids": f.one2many("mrp.routing.workcenter", "bom_id", "Operations"),
            "consumption": f.selection(
                "Flexible Consumption", CONSUMPTION, default="warning", required=True
            ),
            "ready_to_produce": f.selection(
                "Manufacturing Readiness", ("all_available", "asap"), default="all_available"
            ),
            "allow_operation_dependencies": f.boolean("Operation Dependencies"),
            "picking_type_id": f.many2one("stock.picking.type", "Operation Type"),
            "company_id": f.many2one("res.company", "Company", default=1),
        }

    def display_name(self, record_id: int) -> str:
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        name = self.env.sudo()["product.template"].display_name(int(row["product_tmpl_id"]))
        return f"{row['code']}: {name}" if row.get("code") else name

    def _check(self, row: Mapping[str, Any]) -> None:
        if float(row.get("product_qty") or 0.0) <= 0:
            raise sql_constraint("The quantity to produce must be positive!")

    def _after_create(self, record_id: int, vals: Mapping[str, Any]) -> None:
        self._check_cycle(record_id)

    def _after_write(self, ids: list[int], vals: Mapping[str, Any]) -> None:
        for record_id in ids:
            self._check_cycle(record_id)

    def _check_cycle(self, record_id: int) -> None:
        """Odoo's ``_check_bom_cycle``: no component may lead back to the BOM's product."""
        products = lookup.products(self.env)
        lines = lookup.bom_lines(self.env)
        target = self.get(record_id, "product_tmpl_id")
        seen: set[int] = set()
        pending = [record_id]
        while pending:
            bom = pending.pop()
            if bom in seen:
                continue
            seen.add(bom)
            for line in lines.search_ids([["bom_id", "=", bom]]):
                product = int(lines.get(line, "product_id"))
                template = products.get(product, "product_tmpl_id")
                if template == target:
                    raise ValidationError(
                        "The current configuration is incorrect because it would create a cycle "
                        f"between these products: {products.display_name(product)}."
                    )
                pending.extend(self.search_ids([["product_tmpl_id", "=", template]]))

    def find(self, product_id: int, bom_type: str = "normal") -> int | None:
        """``_bom_find`` for a new MO of ``product_id`` (``phantom``: the kit a line explodes
        into): active BOMs of the type, of the variant or of its template (without variant),
        ordered ``sequence, product_id, id`` (NULL last, so at equal sequence the variant BOM
        comes first)."""
        template = lookup.products(self.env).get(product_id, "product_tmpl_id")
        candidates = [
            bom
            for bom in self.search_ids(
                [["product_tmpl_id", "=", template], ["type", "=", bom_type]]
            )
            if self.get(bom, "product_id") in (None, False, 0, product_id)
        ]
        if not candidates:
            return None

        def order(bom: int) -> tuple[int, int, int]:
            return (
                int(self.get(bom, "sequence") or 0),
                0 if self.get(bom, "product_id") else 1,
                bom,
            )

        return min(candidates, key=order)


class BomLine(Model):
    """``mrp.bom.line``: a component quantity per ``product_qty`` of the BOM."""

    _name = "mrp.bom.line"
    _description = "Bill of Material Line"
    _order = "sequence, id"
    _rec_name = "product_id"
    _indexed = ("bom_id",)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "product_id": f.many2one("product.product", "Component", required=True),
            "product_qty": f.floating("Quantity", default=1.0, required=True, digits=4),
            "product_uom_id": f.many2one(
                "uom.uom",
                "Unit",
                required=True,
                default=lambda env, vals: (
                    lookup.products(env).get(int(vals["product_id"]), "uom_id")
                    if vals.get("product_id")
                    else None
                ),
            ),
            "bom_id": f.many2one("mrp.bom", "Parent BoM", required=True),
            "sequence": f.integer("Sequence", default=1),
            "operation_id": f.many2one("mrp.routing.workcenter", "Consumed in Operation"),
            "manual_consumption": f.boolean("Manual Consumption"),
        }

    def display_name(self, record_id: int) -> str:
        product = self.get(record_id, "product_id")
        return lookup.products(self.env).display_name(int(product)) if product else ""


class Operation(Model):
    """``mrp.routing.workcenter``: an operation of a BOM on a work centre."""

    _name = "mrp.routing.workcenter"
    _description = "Work Center Usage"
    _order = "bom_id, sequence, id"
    _indexed = ("bom_id",)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        old = frozenset({17, 18})
        return {
            **super().define_fields(version),
            "name": f.char("Operation", required=True),
            "active": f.boolean("Active", default=True),
            "workcenter_id": f.many2one("mrp.workcenter", "Work Center", required=True),
            "sequence": f.integer("Sequence", default=100),
            "bom_id": f.many2one("mrp.bom", "Bill of Material"),
            "company_id": f.many2one("res.company", "Company", default=1),
            "time_mode": f.selection("Duration Computation", ("auto", "manual"), default="manual"),
            "time_mode_batch": f.integer("Based on", default=10),
            "time_cycle_manual": f.floating("Manual Duration", default=60.0),
            "time_cycle": f.floating("Duration", compute=_time_cycle),
            "blocked_by_operation_ids": f.many2many("mrp.routing.workcenter", "Blocked By"),
            "worksheet_type": f.selection(
                "Worksheet", ("pdf", "google_slide", "text"), default="text", versions=old
            ),
            "note": f.text("Description", versions=old),
            "cost_mode": f.selection(
                "Cost Based On",
                ("actual", "estimated"),
                default="actual",
                versions=frozenset({19}),
            ),
        }

    def _check(self, row: Mapping[str, Any]) -> None:
        check_operation_company(self, row)


def check_operation_company(model: Model, row: Mapping[str, Any]) -> None:
    """Odoo's ``_check_company``: an operation takes its BOM's company, and a work centre of a
    company cannot serve a BOM of another company or of none (a BOM loaded with an empty
    ``company_id`` cell has none)."""
    workcenter, bom = row.get("workcenter_id"), row.get("bom_id")
    if not workcenter or not bom:
        return
    env = model.env.sudo()
    wc_company = env["mrp.workcenter"].get(int(workcenter), "company_id")
    bom_company = lookup.boms(model.env).get(int(bom), "company_id")
    if wc_company and wc_company != bom_company:
        company = env["res.company"].display_name(int(bom_company)) if bom_company else "False"
        center = env["mrp.workcenter"].display_name(int(workcenter))
        raise UserError(
            "Incompatible companies on records:\n"
            f"- \u201c{row.get('name')}\u201d belongs to company \u201c{company}\u201d and "
            f"\u201cWork Center\u201d (workcenter_id: '{center}')"
            " belongs to another company."
        )


def _time_cycle(model: Model, row: Mapping[str, Any]) -> float:
    del model
    return float(row.get("time_cycle_manual") or 0.0)
