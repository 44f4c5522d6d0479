"""``mrp.production``: create (moves and work orders from the BOM), confirm, produce, cancel.

Writing ``qty_producing`` changes nothing else, as over RPC in Odoo (the onchange does not run);
``set_qty_producing`` propagates it to the components. ``state`` and ``reservation_state``
are recomputed from the moves and work orders after every change (Odoo's ``_compute_state``).
``button_mark_done`` lives in ``mark_done``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup, mark_done
from cloud_relay.odoo.sandbox.models import production_state as derived
from cloud_relay.odoo.sandbox.models.bom import CONSUMPTION
from cloud_relay.odoo.sandbox.models.location import MANUFACTURING_TYPE, PRODUCTION_LOCATION
from cloud_relay.odoo.sandbox.models.product import round_to, tracking_of
from cloud_relay.odoo.sandbox.models.production_state import recompute_states
from cloud_relay.odoo.sandbox.orm import Model, public, sql_constraint

STATES = ("draft", "confirmed", "progress", "to_close", "done", "cancel")
RESERVATION = ("confirmed", "assigned", "waiting")
MO_SEQUENCE = "mrp.production"
EPSILON = 1e-9


def _bom_default(env: Any, vals: Mapping[str, Any]) -> Any:
    product = vals.get("product_id")
    return lookup.boms(env).find(int(product)) if product else None


def _qty_default(env: Any, vals: Mapping[str, Any]) -> float:
    bom = vals.get("bom_id")
    return float(lookup.boms(env).get(int(bom), "product_qty")) if bom else 1.0


def _uom_default(env: Any, vals: Mapping[str, Any]) -> Any:
    bom = vals.get("bom_id")
    if bom:
        return lookup.boms(env).get(int(bom), "product_uom_id")
    product = vals.get("product_id")
    return lookup.products(env).get(int(product), "uom_id") if product else None


def _type_location(field_name: str) -> Any:
    def default(env: Any, vals: Mapping[str, Any]) -> Any:
        picking_type = vals.get("picking_type_id") or MANUFACTURING_TYPE
        return env.sudo()["stock.picking.type"].get(int(picking_type), field_name)

    return default


class Production(Model):
    """``mrp.production``."""

    _name = "mrp.production"
    _description = "Manufacturing Order"
    _order = "priority desc, date_start asc, id"
    _indexed = ("name", "origin", "procurement_group_id")

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        old = frozenset({17, 18})
        return {
            **super().define_fields(version),
            "name": f.char("Reference", default="New"),
            "priority": f.selection("Priority", ("0", "1"), default="0"),
            "backorder_sequence": f.integer("Backorder Sequence"),
            "origin": f.char("Source"),
            "product_id": f.many2one("product.product", "Product", required=True),
            "product_tmpl_id": f.many2one(
                "product.template", "Product Template", compute=derived.template
            ),
            "product_tracking": f.selection(
                "Tracking", ("serial", "lot", "none"), compute=derived.tracking
            ),
            "bom_id": f.many2one("mrp.bom", "Bill of Material", default=_bom_default),
            "product_qty": f.floating(
                "Quantity To Produce", required=True, default=_qty_default, digits=4
            ),
            "product_uom_id": f.many2one(
                "uom.uom", "Product Unit of Measure", required=True, default=_uom_default
            ),
            "product_uom_qty": f.floating("Total Quantity", compute=derived.uom_qty),
            "lot_producing_id": f.many2one("stock.lot", "Lot/Serial Number", versions=old),
            "lot_producing_ids": f.many2many(
                "stock.lot", "Lot/Serial Numbers", versions=frozenset({19})
            ),
            "qty_producing": f.floating("Quantity Producing", digits=4),
            "qty_produced": f.floating("Quantity Produced", compute=derived.qty_produced),
            "picking_type_id": f.many2one(
                "stock.picking.type", "Operation Type", required=True, default=MANUFACTURING_TYPE
            ),
            "location_src_id": f.many2one(
                "stock.location",
                "Components Location",
                required=True,
                default=_type_location("default_location_src_id"),
            ),
            "location_dest_id": f.many2one(
                "stock.location",
                "Finished Products Location",
                required=True,
                default=_type_location("default_location_dest_id"),
            ),
            "production_location_id": f.many2one(
                "stock.location", "Production Location", default=PRODUCTION_LOCATION
            ),
            "date_start": f.datetime_field(
                "Start", required=True, default=lambda env, vals: env.now()
            ),
            "date_finished": f.datetime_field("End"),
            "date_deadline": f.datetime_field("Deadline"),
            "state": f.selection("State", STATES, default="draft"),
            "reservation_state": f.selection("MO Readiness", RESERVATION),
            "move_raw_ids": f.one2many(
                "stock.move",
                "raw_material_production_id",
                "Components",
                domain=(["scrap_id", "=", False],),
            ),
            "move_finished_ids": f.one2many(
                "stock.move",
                "production_id",
                "Finished Products",
                domain=(["scrap_id", "=", False],),
            ),
            "workorder_ids": f.one2many("mrp.workorder", "production_id", "Work Orders"),
            "user_id": f.many2one("res.users", "Responsible", default=lambda env, vals: env.uid),
            "company_id": f.many2one("res.company", "Company", required=True, default=1),
            "procurement_group_id": f.many2one(
                "procurement.group", "Procurement Group", versions=old
            ),
            "scrap_ids": f.one2many("stock.scrap", "production_id", "Scraps"),
            "scrap_count": f.integer("Scrap Move", compute=derived.scrap_count),
            "is_locked": f.boolean("Is Locked", default=True),
            "consumption": f.selection(
                "Consumption", CONSUMPTION, default="flexible", required=True
            ),
            "duration_expected": f.floating(
                "Expected Duration", compute=derived.duration("duration_expected")
            ),
            "duration": f.floating("Real Duration", compute=derived.duration("duration")),
        }

    # -- create ----------------------------------------------------------------------------

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        if not vals.get("name") or vals["name"] == "New":
            vals["name"] = f"WH/MO/{self.env.db.next_number(MO_SEQUENCE):05d}"
        if not vals.get("date_finished") and vals.get("date_start"):
            vals["date_finished"] = vals["date_start"]
        return vals

    def _check(self, row: Mapping[str, Any]) -> None:
        if float(row.get("product_qty") or 0.0) <= 0:
            raise sql_constraint("The quantity to produce must be positive!")
        clash = self.env.db.lookup(self._name, "name", row.get("name")) - {row.get("id")}
        if clash:
            raise sql_constraint("Reference must be unique per Company!")

    def _after_create(self, record_id: int, vals: Mapping[str, Any]) -> None:
        row = self.row(record_id)
        if "procurement_group_id" in self.fields and not row.get("procurement_group_id"):
            group = self.env.sudo()["procurement.group"].new({"name": row["name"]})
            self.env.db.update(self._name, record_id, {"procurement_group_id": group})
        if "move_raw_ids" not in vals:
            self.create_raw_moves(record_id, float(row["product_qty"]))
        if "move_finished_ids" not in vals:
            lookup.moves(self.env).new(
                {
                    "production_id": record_id,
                    "product_id": row["product_id"],
                    "product_uom_qty": row["product_qty"],
                    "product_uom": row["product_uom_id"],
                }
            )
        if "workorder_ids" not in vals:
            lookup.workorders(self.env).create_for(record_id)

    def _before_write(self, ids: list[int], vals: dict[str, Any]) -> dict[str, Any]:
        """A draft MO's moves follow its quantity (Odoo recomputes them until confirmation)."""
        if "product_qty" not in vals:
            return vals
        moves = lookup.moves(self.env)
        quantity = float(vals["product_qty"] or 0.0)
        for record_id in ids:
            row = self.row(record_id)
            old = float(row.get("product_qty") or 0.0)
            if row.get("state") != "draft" or old <= 0 or quantity <= 0:
                continue
            for move_id in self.raw_moves(record_id):
                demand = float(moves.get(move_id, "product_uom_qty")) * quantity / old
                moves.update([move_id], {"product_uom_qty": round_to(demand, 0.0001)})
            moves.update(self.finished_moves(record_id), {"product_uom_qty": quantity})
        return vals

    def create_raw_moves(self, record_id: int, quantity: float, state: str = "draft") -> list[int]:
        """One component move per BOM line, for ``quantity`` of the finished product."""
        row = self.row(record_id)
        bom = row.get("bom_id")
        if not bom:
            return []
        boms = lookup.boms(self.env)
        ratio = quantity / float(boms.get(int(bom), "product_qty") or 1.0)
        moves = []
        for line, line_row in exploded(self.env, int(bom), ratio):
            if self.env.version <= 18:
                check_move_category(self.env, line_row, str(row.get("name") or ""))
            moves.append(
                lookup.moves(self.env).new(
                    {
                        "raw_material_production_id": record_id,
                        "product_id": line_row["product_id"],
                        "product_uom": line_row["product_uom_id"],
                        "product_uom_qty": round_to(float(line_row["product_qty"]), 0.0001),
                        "bom_line_id": line,
                        "operation_id": line_row.get("operation_id") or False,
                        "manual_consumption": bool(line_row.get("manual_consumption")),
                        "sequence": line_row.get("sequence") or 1,
                        "state": state,
                    }
                )
            )
        return moves

    def _touch(self, ids: list[int]) -> None:
        self.env.mark_dirty(self._name, ids)
        workorders = self.env.db
        for record_id in ids:
            if workorders.exists(self._name, record_id):
                self.env.mark_dirty(
                    "mrp.workorder", workorders.lookup("mrp.workorder", "production_id", record_id)
                )

    # -- derived state -----------------------------------------------------------------------

    def raw_moves(self, record_id: int) -> list[int]:
        """Component moves (scrap moves excluded)."""
        return list(self.get(record_id, "move_raw_ids"))

    def finished_moves(self, record_id: int) -> list[int]:
        """Finished product moves (scrap moves excluded)."""
        return list(self.get(record_id, "move_finished_ids"))

    def recompute(self, ids: list[int]) -> None:
        """``state`` and ``reservation_state`` as Odoo computes them."""
        recompute_states(self, ids)

    # -- RPC -----------------------------------------------------------------------------------

    @public(access=("write",))
    def action_confirm(self, ids: list[int]) -> bool:
        """Confirm draft MOs: copy the BOM's consumption, confirm moves, reserve components."""
        moves = lookup.moves(self.env)
        for record_id in ids:
            row = self.row(record_id)
            if row.get("state") != "draft":
                continue
            bom = row.get("bom_id")
            if bom:
                consumption = lookup.boms(self.env).get(int(bom), "consumption")
                self.env.db.update(self._name, record_id, {"consumption": consumption})
            moves.confirm(self.raw_moves(record_id) + self.finished_moves(record_id))
            self.env.db.update(self._name, record_id, {"state": "confirmed"})
            lookup.workorders(self.env).link(record_id)
            self._touch([record_id])
        self.action_assign(ids)
        return True

    @public(access=("write",))
    def action_assign(self, ids: list[int]) -> bool:
        """Reserve the MOs' moves: components from stock, the finished product from the
        production location (a virtual location, so always in full)."""
        moves = lookup.moves(self.env)
        for record_id in ids:
            moves.assign(self.raw_moves(record_id) + self.finished_moves(record_id))
        return True

    @public(access=("write",))
    def action_cancel(self, ids: list[int]) -> bool:
        """Cancel MOs that are not done (a done MO is left as it is)."""
        moves = lookup.moves(self.env)
        workorders = lookup.workorders(self.env)
        for record_id in ids:
            if self.get(record_id, "state") == "done":
                continue
            moves.cancel(self.raw_moves(record_id) + self.finished_moves(record_id))
            workorders.cancel(self.get(record_id, "workorder_ids"))
            self.env.db.update(self._name, record_id, {"state": "cancel"})
            self._touch([record_id])
        return True

    @public(access=("write",))
    def set_qty_producing(self, ids: list[int]) -> None:
        """Set every component to ``(qty_producing - qty_produced) * unit_factor``, picked."""
        for record_id in ids:
            self.apply_qty_producing(record_id)
        return None

    def apply_qty_producing(self, record_id: int, pick_manual: bool = True) -> None:
        """Odoo's ``_set_qty_producing`` for one MO: the components, and the finished move
        of a serial product (never picked here)."""
        moves = lookup.moves(self.env)
        self.env.flush()
        row = self.row(record_id)
        if (
            tracking_of(self.env, int(row["product_id"])) == "serial"
            and float(row.get("qty_producing") or 0.0) > 1
        ):
            self.env.db.update(self._name, record_id, {"qty_producing": 1.0})
            row = self.row(record_id)
        producing = float(row.get("qty_producing") or 0.0) - float(
            self.get(record_id, "qty_produced")
        )
        serial = tracking_of(self.env, int(row["product_id"])) == "serial"
        finished = [
            m
            for m in self.finished_moves(record_id)
            if serial and moves.get(m, "product_id") == row["product_id"]
        ]
        for move_id in self.raw_moves(record_id) + finished:
            move = moves.row(move_id)
            if move.get("state") in ("done", "cancel") or not move.get("product_uom_qty"):
                continue
            if move.get("manual_consumption") and move.get("picked"):
                continue
            factor = float(moves.value(move, "unit_factor"))
            rounding = float(lookup.uoms(self.env).get(int(move["product_uom"]), "rounding"))
            moves.set_quantity(move_id, round_to(producing * factor, rounding))
            if (
                (not move.get("manual_consumption") or pick_manual)
                and moves.get(move_id, "quantity")
                and move_id not in finished
            ):
                moves.update([move_id], {"picked": True})
        self._touch([record_id])

    @public(access=("write",))
    def action_generate_serial(self, ids: list[int]) -> Any:
        """Create the finished lot from the ``stock.lot.serial`` sequence (None; 19 may act)."""
        if len(ids) != 1:
            raise UserError("Expected singleton")
        record_id = ids[0]
        lots = lookup.lots(self.env)
        row = self.row(record_id)
        product = int(row["product_id"])
        if self.env.version >= 19:
            if tracking_of(self.env, product) == "serial" and float(row["product_qty"]) > 1:
                return {
                    "type": "ir.actions.act_window",
                    "res_model": "mrp.production.serials",
                    "name": "Assign Serial Numbers",
                    "target": "new",
                    "view_mode": "form",
                    "views": [[False, "form"]],
                    "context": {"default_production_id": record_id},
                }
            if row.get("lot_producing_ids"):
                raise UserError("You cannot set more than 1 lot per product")
        lot = lots.new({"name": lots.next_name(), "product_id": product})
        if self.env.version >= 19:
            self.update([record_id], {"lot_producing_ids": [[6, 0, [lot]]]})
            if tracking_of(self.env, product) == "serial":
                self.update([record_id], {"qty_producing": 1.0})
        else:
            self.update([record_id], {"lot_producing_id": lot})
            if tracking_of(self.env, product) == "serial":
                self.apply_qty_producing(record_id, pick_manual=False)
        return None

    @public(access=("write",))
    def button_mark_done(self, ids: list[int]) -> Any:
        """Close MOs through Odoo's pipeline; True, a wizard action, a backorder action or None."""
        return mark_done.button_mark_done(self, ids)

    def producing_lots(self, record_id: int) -> list[int]:
        """The finished lot(s): ``lot_producing_id`` (17, 18) or ``lot_producing_ids`` (19)."""
        if self.env.version >= 19:
            return list(self.get(record_id, "lot_producing_ids") or [])
        lot = self.get(record_id, "lot_producing_id")
        return [int(lot)] if lot else []


def check_move_category(env: Any, line: Mapping[str, Any], blocking: str) -> None:
    """17/18 refuse a move whose unit is of another category than its product's, at MO create
    (a BOM line in kg of a product in Units is accepted on the BOM, refused here)."""
    uoms = lookup.uoms(env)
    products = lookup.products(env)
    product_uom = int(products.get(int(line["product_id"]), "uom_id"))
    move_uom = int(line["product_uom_id"])
    if uoms.get(product_uom, "category_id") == uoms.get(move_uom, "category_id"):
        return
    categories = env.sudo()["uom.category"]

    def named(uom: int) -> str:
        category = categories.display_name(int(uoms.get(uom, "category_id")))
        return f"{uoms.display_name(uom)} ({category})"

    raise UserError(
        "You cannot perform moves because their unit of measure has a different category from "
        "their product unit of measure.\n\n"
        f"{products.display_name(int(line['product_id']))} --> Product UoM is "
        f"{named(product_uom)} - Move UoM is {named(move_uom)}\n\nBlocking: {blocking}"
    )


def exploded(env: Any, bom: int, ratio: float, depth: int = 0) -> list[tuple[int, dict[str, Any]]]:
    """``bom.explode``: the BOM's lines for ``ratio`` times its quantity, a line whose product
    has a kit (``phantom``) BOM replaced by the kit's lines (recursively), each keeping the
    operation of the line it came from. Quantities in the returned rows are already scaled."""
    boms, lines = lookup.boms(env), lookup.bom_lines(env)
    out: list[tuple[int, dict[str, Any]]] = []
    for line in lines.search_ids([["bom_id", "=", bom]]):
        row = dict(lines.row(line))
        quantity = float(row["product_qty"]) * ratio
        kit = boms.find(int(row["product_id"]), "phantom") if depth < 10 else None
        if kit is None:
            out.append((line, {**row, "product_qty": quantity}))
            continue
        kit_ratio = quantity / float(boms.get(kit, "product_qty") or 1.0)
        for sub, sub_row in exploded(env, kit, kit_ratio, depth + 1):
            operation = row.get("operation_id") or sub_row.get("operation_id")
            out.append((sub, {**sub_row, "operation_id": operation}))
    return out
