"""The wizards ``button_mark_done`` opens: ``mrp.production.backorder`` and
``mrp.consumption.warning``. Each only calls ``button_mark_done`` again with context keys.
"""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.bom import CONSUMPTION
from cloud_relay.odoo.sandbox.models.production import Production
from cloud_relay.odoo.sandbox.orm import Model, public


def _mark_done(model: Model, production_ids: list[int], **context: Any) -> Any:
    base = {k: v for k, v in model.env.context.items() if not k.startswith("default_")}
    productions = Production(model.env.with_context(**{**base, **context}))
    return productions.button_mark_done(production_ids)


class Backorder(Model):
    """``mrp.production.backorder``: create backorders, or close without."""

    _name = "mrp.production.backorder"
    _description = "Wizard to mark as done or create back order"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "mrp_production_ids": f.many2many("mrp.production", "Manufacturing Orders"),
            "mrp_production_backorder_line_ids": f.one2many(
                "mrp.production.backorder.line", "mrp_production_backorder_id", "Backorder Lines"
            ),
        }

    @public(access=("write",))
    def action_backorder(self, ids: list[int]) -> Any:
        """Mark done, splitting a backorder off each MO whose line says so."""
        lines = self.env["mrp.production.backorder.line"]
        result: Any = True
        for record_id in ids:
            chosen = [
                int(lines.get(line, "mrp_production_id"))
                for line in lines.search_ids([["mrp_production_backorder_id", "=", record_id]])
                if lines.get(line, "to_backorder")
            ]
            if self.env.version >= 18:
                chosen += list(self.env.context.get("always_backorder_mo_ids") or [])
            result = _mark_done(
                self,
                list(self.get(record_id, "mrp_production_ids")),
                skip_backorder=True,
                mo_ids_to_backorder=chosen,
            )
        return result

    @public(access=("write",))
    def action_close_mo(self, ids: list[int]) -> Any:
        """Mark done without any backorder."""
        result: Any = True
        for record_id in ids:
            productions = list(self.get(record_id, "mrp_production_ids"))
            if self.env.version == 17:
                result = _mark_done(self, productions, skip_backorder=True, no_procurement=True)
            else:
                always = list(self.env.context.get("always_backorder_mo_ids") or [])
                result = _mark_done(
                    self, productions, skip_backorder=True, mo_ids_to_backorder=always
                )
        return result


class BackorderLine(Model):
    """``mrp.production.backorder.line``."""

    _name = "mrp.production.backorder.line"
    _description = "Backorder Confirmation Line"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "mrp_production_backorder_id": f.many2one(
                "mrp.production.backorder", "MO Backorder", required=True
            ),
            "mrp_production_id": f.many2one("mrp.production", "Manufacturing Order", required=True),
            "to_backorder": f.boolean("To Backorder"),
        }


class ConsumptionWarning(Model):
    """``mrp.consumption.warning``: accept the recorded consumption, or reset it to the BOM."""

    _name = "mrp.consumption.warning"
    _description = (
        "Wizard in case of consumption in warning/strict and more component has been used "
        "for a MO (related to the bom)"
    )

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "mrp_production_ids": f.many2many("mrp.production", "Manufacturing Orders"),
            "mrp_consumption_warning_line_ids": f.one2many(
                "mrp.consumption.warning.line", "mrp_consumption_warning_id", "Lines"
            ),
        }

    @public(access=("write",))
    def action_confirm(self, ids: list[int]) -> Any:
        """Mark done as recorded (unpicked components are then cancelled, not consumed)."""
        result: Any = True
        for record_id in ids:
            result = _mark_done(
                self, list(self.get(record_id, "mrp_production_ids")), skip_consumption=True
            )
        return result

    @public(access=("write",))
    def action_set_qty(self, ids: list[int]) -> Any:
        """Set the components to the BOM's quantities, picked, then mark done."""
        lines = self.env["mrp.consumption.warning.line"]
        moves = lookup.moves(self.env)
        productions = lookup.productions(self.env)
        for record_id in ids:
            for line in lines.search_ids([["mrp_consumption_warning_id", "=", record_id]]):
                row = lines.row(line)
                production = int(row["mrp_production_id"])
                product = row["product_id"]
                expected = float(row.get("product_expected_qty_uom") or 0.0)
                matching = [
                    m
                    for m in productions.raw_moves(production)
                    if moves.get(m, "product_id") == product
                    and moves.get(m, "state") not in ("done", "cancel")
                ]
                if not matching and expected:
                    matching = [
                        moves.new(
                            {
                                "raw_material_production_id": production,
                                "product_id": product,
                                "product_uom_qty": expected,
                            }
                        )
                    ]
                for index, move_id in enumerate(matching):
                    moves.set_quantity(move_id, expected if index == 0 else 0.0)
                    moves.update([move_id], {"picked": True})
        return self.action_confirm(ids)


class ConsumptionWarningLine(Model):
    """``mrp.consumption.warning.line``."""

    _name = "mrp.consumption.warning.line"
    _description = "Line of issue consumption"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "mrp_consumption_warning_id": f.many2one(
                "mrp.consumption.warning", "Parent Wizard", required=True
            ),
            "mrp_production_id": f.many2one("mrp.production", "Manufacturing Order", required=True),
            "consumption": f.selection("Consumption", CONSUMPTION),
            "product_id": f.many2one("product.product", "Product", required=True),
            "product_uom_id": f.many2one("uom.uom", "Unit"),
            "product_consumed_qty_uom": f.floating("Consumed"),
            "product_expected_qty_uom": f.floating("To Consume"),
        }
