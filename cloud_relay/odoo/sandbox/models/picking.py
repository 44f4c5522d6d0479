"""``stock.picking``: transfers and receipts made of moves, validated by ``button_validate``.

As measured on 18 and 19:

- the ``name`` is unique per company (a client-chosen name is a duplicate guard); without one
  the operation type's sequence names it (``WH/INT/00001``);
- a create whose moves carry ``quantity`` and ``picked`` is assigned at once, and
  ``button_validate`` confirms a draft picking by itself;
- when less is picked than demanded, ``button_validate`` answers the backorder wizard, unless
  the context says ``skip_backorder`` (a backorder with the same ``origin`` is still created)
  and also lists the picking in ``picking_ids_not_to_backorder`` (closed without one);
- changing the operation type of a done or cancelled picking is refused, so re-``load``ing a
  done picking by external id fails.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.fields import Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.orm import Model, public, sql_constraint

STATES = ("draft", "waiting", "confirmed", "assigned", "done", "cancel")
BACKORDER_VIEW_ID = {17: 626, 18: 626, 19: 660}
EPSILON = 1e-9
_NOTHING_TO_VALIDATE = {
    17: "You cannot validate a transfer if no quantities are reserved nor done. To force the "
    "transfer, switch in edit mode and encode the done quantities.",
    18: "You cannot validate a transfer if no quantities are reserved. To force the transfer, "
    "encode quantities.",
    19: "Transfer trouble alert! Validating a zero quantity transfer? You're not moving "
    "invisible goods around are you?\nSet some quantities and let's get moving!",
}


class Picking(Model):
    """``stock.picking``."""

    _name = "stock.picking"
    _description = "Transfer"
    _order = "id desc"
    _indexed = ("name", "origin")

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Reference", default="/"),
            "origin": f.char("Source Document"),
            "note": f.char("Notes"),  # Html: plain text comes back as a paragraph
            "picking_type_id": f.many2one("stock.picking.type", "Operation Type", required=True),
            "picking_type_code": f.char("Type of Operation", compute=_type_code),
            "location_id": f.many2one("stock.location", "Source Location", required=True),
            "location_dest_id": f.many2one("stock.location", "Destination Location", required=True),
            "move_ids": f.one2many("stock.move", "picking_id", "Stock Moves"),
            "state": f.selection("Status", STATES, compute=_state),
            "backorder_id": f.many2one("stock.picking", "Back Order of"),
            "backorder_ids": f.one2many("stock.picking", "backorder_id", "Back Orders"),
            "date_done": f.datetime_field("Date of Transfer"),
            "scheduled_date": f.datetime_field("Scheduled Date"),
            "company_id": f.many2one("res.company", "Company", default=1),
        }

    # -- hooks ---------------------------------------------------------------------------

    def _prepare_create(self, vals: dict[str, Any]) -> dict[str, Any]:
        types = self.env.sudo()["stock.picking.type"]
        picking_type = vals.get("picking_type_id")
        if picking_type:
            row = types.row(int(picking_type))
            vals["location_id"] = vals.get("location_id") or row.get("default_location_src_id")
            vals["location_dest_id"] = vals.get("location_dest_id") or row.get(
                "default_location_dest_id"
            )
            if vals.get("name") in (None, "", "/"):
                number = self.env.db.next_number(f"stock.picking.type.{picking_type}")
                vals["name"] = f"WH/{row.get('sequence_code')}/{number:05d}"
        vals["scheduled_date"] = vals.get("scheduled_date") or self.env.now()
        if vals.get("note") and not str(vals["note"]).startswith("<"):
            vals["note"] = f"<p>{html.escape(str(vals['note']))}</p>"  # an Html field
        self._check_unique(None, vals.get("name"), vals.get("company_id") or 1)
        return vals

    def _after_create(self, record_id: int, vals: Mapping[str, Any]) -> None:
        moves = lookup.moves(self.env)
        with_quantity = [
            m for m in self.move_ids(record_id) if float(moves.value(moves.row(m), "quantity")) > 0
        ]
        moves.confirm(with_quantity)

    def _before_write(self, ids: list[int], vals: dict[str, Any]) -> dict[str, Any]:
        if vals.get("picking_type_id") and any(self.state_of(i) in ("done", "cancel") for i in ids):
            raise UserError(
                "Changing the operation type of this record is forbidden at this point."
            )
        if "name" in vals:
            for record_id in ids:
                company = self.get(record_id, "company_id") or 1
                self._check_unique(record_id, vals["name"], company)
        return vals

    def _check_unique(self, record_id: int | None, name: Any, company: Any) -> None:
        if not name or name == "/":
            return
        for other in self.env.db.lookup(self._name, "name", name):
            if other != record_id and (self.get(other, "company_id") or 1) == company:
                raise sql_constraint("Reference must be unique per company!")

    # -- reading ---------------------------------------------------------------------------

    def move_ids(self, record_id: int) -> list[int]:
        """The picking's moves, by id."""
        return sorted(self.env.db.lookup("stock.move", "picking_id", record_id))

    def state_of(self, record_id: int) -> str:
        """The picking's state, from its moves (Odoo's ``_compute_state``)."""
        moves = lookup.moves(self.env)
        states = [moves.get(m, "state") for m in self.move_ids(record_id)]
        if not states or all(s == "draft" for s in states) or "draft" in states:
            return "draft"
        if all(s == "cancel" for s in states):
            return "cancel"
        if all(s in ("done", "cancel") for s in states):
            return "done"
        if any(s in ("assigned", "partially_available") for s in states):
            return "assigned"  # the default "as soon as possible" shipping policy
        return "confirmed"

    # -- buttons ---------------------------------------------------------------------------

    @public(access=("write",))
    def action_confirm(self, ids: list[int]) -> bool:
        """Confirm the moves and reserve what is available."""
        moves = lookup.moves(self.env)
        for record_id in ids:
            move_ids = self.move_ids(record_id)
            moves.confirm(move_ids)
            moves.assign(move_ids)
        return True

    @public(access=("write",))
    def action_assign(self, ids: list[int]) -> bool:
        """Reserve what the open moves still miss."""
        moves = lookup.moves(self.env)
        for record_id in ids:
            moves.assign(self.move_ids(record_id))
        return True

    @public(access=("write",))
    def button_validate(self, ids: list[int]) -> Any:
        """Post the pickings, or answer the backorder wizard when less is picked than asked."""
        moves = lookup.moves(self.env)
        for record_id in ids:
            if self.state_of(record_id) == "draft":
                self.action_confirm([record_id])
            move_ids = [m for m in self.move_ids(record_id) if moves.get(m, "state") != "cancel"]
            if not any(moves.get(m, "picked") for m in move_ids):
                if not any(float(moves.value(moves.row(m), "quantity")) > 0 for m in move_ids):
                    raise UserError(_NOTHING_TO_VALIDATE[self.env.version])
                moves.update(move_ids, {"picked": True})
        short = [i for i in ids if self._short(i)]
        context = self.env.context
        not_to_backorder = set(context.get("picking_ids_not_to_backorder") or [])
        asked = [
            i
            for i in short
            if i not in not_to_backorder
            and not context.get("skip_backorder")
            and self._backorder_policy(i) == "ask"
        ]
        if asked:
            return {
                "name": "Create Backorder?",
                "type": "ir.actions.act_window",
                "view_mode": "form",
                "res_model": "stock.backorder.confirmation",
                "views": [[BACKORDER_VIEW_ID[self.env.version], "form"]],
                "view_id": BACKORDER_VIEW_ID[self.env.version],
                "target": "new",
                "context": {
                    "button_validate_picking_ids": list(ids),
                    "default_show_transfers": False,
                    "default_pick_ids": [[4, i] for i in asked],
                },
            }
        for record_id in ids:
            backorder = (
                record_id in short
                and record_id not in not_to_backorder
                and self._backorder_policy(record_id) != "never"
            )
            self._done(record_id, backorder=backorder)
        return True

    def _backorder_policy(self, record_id: int) -> str:
        types = self.env.sudo()["stock.picking.type"]
        return str(types.get(int(self.get(record_id, "picking_type_id")), "create_backorder"))

    def _short(self, record_id: int) -> bool:
        moves = lookup.moves(self.env)
        for move_id in self.move_ids(record_id):
            row = moves.row(move_id)
            if row.get("state") in ("done", "cancel"):
                continue
            if float(moves.value(row, "quantity")) < float(row.get("product_uom_qty") or 0) - (
                EPSILON
            ):
                return True
        return False

    def _done(self, record_id: int, *, backorder: bool) -> None:
        moves = lookup.moves(self.env)
        rests: list[tuple[int, float]] = []
        for move_id in self.move_ids(record_id):
            row = moves.row(move_id)
            if row.get("state") in ("done", "cancel"):
                continue
            quantity = float(moves.value(row, "quantity"))
            demand = float(row.get("product_uom_qty") or 0.0)
            if backorder and quantity < demand - EPSILON:
                rests.append((move_id, demand - quantity))
                moves.env.db.update("stock.move", move_id, {"product_uom_qty": quantity})
        open_moves = [
            m for m in self.move_ids(record_id) if moves.get(m, "state") not in ("done", "cancel")
        ]
        moves.action_done(open_moves)
        self.env.db.update(self._name, record_id, {"date_done": self.env.now()})
        if rests:
            self._backorder(record_id, rests)

    def _backorder(self, record_id: int, rests: list[tuple[int, float]]) -> int:
        moves = lookup.moves(self.env)
        row = self.row(record_id)
        move_values = []
        for move_id, rest in rests:
            move = moves.row(move_id)
            values = {
                "product_id": move["product_id"],
                "product_uom": move["product_uom"],
                "product_uom_qty": rest,
                "location_id": move["location_id"],
                "location_dest_id": move["location_dest_id"],
            }
            if "name" in moves.fields:
                values["name"] = move.get("name")
            move_values.append([0, 0, values])
        backorder = self.new(
            {
                "picking_type_id": row["picking_type_id"],
                "location_id": row["location_id"],
                "location_dest_id": row["location_dest_id"],
                "origin": row.get("origin"),
                "backorder_id": record_id,
                "company_id": row.get("company_id") or 1,
                "move_ids": move_values,
            }
        )
        self.action_confirm([backorder])
        return backorder


def _state(model: Model, row: Mapping[str, Any]) -> str:
    assert isinstance(model, Picking)
    return model.state_of(int(row["id"]))


def _type_code(model: Model, row: Mapping[str, Any]) -> Any:
    return model.env.sudo()["stock.picking.type"].get(int(row["picking_type_id"]), "code")
