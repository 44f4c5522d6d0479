"""``mrp.workorder``: one per BOM operation; start, pause, finish, and their time logs.

Per version (contract §5): 17/18 states ``pending``/``waiting``/``ready``..., 19 ``blocked``/
``ready``...; ``button_start``/``button_pending`` return True in 17 and None from 18;
``button_done`` is gone in 19. Work orders follow one another in operation sequence.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.fields import DATETIME_FORMAT, Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.product import tracking_of
from cloud_relay.odoo.sandbox.models.workcenter import PERFORMANCE_LOSS, PRODUCTIVE_LOSS
from cloud_relay.odoo.sandbox.orm import Model, public

OLD_STATES = ("pending", "waiting", "ready", "progress", "done", "cancel")
NEW_STATES = ("blocked", "ready", "progress", "done", "cancel")
EPSILON = 1e-9


class Workorder(Model):
    """``mrp.workorder``."""

    _name = "mrp.workorder"
    _description = "Work Order"
    _order = "sequence, id"
    _indexed = ("production_id",)
    _inverses = {"qty_producing": "_set_qty_producing"}

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        states = NEW_STATES if version >= 19 else OLD_STATES
        return {
            **super().define_fields(version),
            "name": f.char("Work Order", required=True),
            "sequence": f.integer("Sequence", default=100),
            "production_id": f.many2one("mrp.production", "Manufacturing Order", required=True),
            "workcenter_id": f.many2one("mrp.workcenter", "Work Center", required=True),
            "operation_id": f.many2one("mrp.routing.workcenter", "Operation"),
            "product_id": f.many2one("product.product", "Product", compute=_from_mo("product_id")),
            "product_uom_id": f.many2one(
                "uom.uom", "Unit of Measure", compute=_from_mo("product_uom_id")
            ),
            "state": f.selection("Status", states, default="ready" if version >= 19 else "pending"),
            "working_state": f.selection(
                "Workcenter Status", ("normal", "blocked", "done"), compute=_working_state
            ),
            "qty_production": f.floating(
                "Original Production Quantity", compute=_from_mo("product_qty")
            ),
            "qty_producing": f.floating(
                "Currently Produced Quantity", compute=_from_mo("qty_producing")
            ),
            "qty_produced": f.floating("Quantity" if version < 19 else "Quantity Done"),
            "qty_remaining": f.floating("Quantity To Be Produced", compute=_remaining),
            "duration_expected": f.floating("Expected Duration"),
            "duration": f.floating("Real Duration", compute=_duration),
            "duration_unit": f.floating("Duration Per Unit"),
            "is_user_working": f.boolean("Is the Current User Working", compute=_user_working),
            "date_start": f.datetime_field("Start"),
            "date_finished": f.datetime_field("End"),
            "time_ids": f.one2many("mrp.workcenter.productivity", "workorder_id", "Time Logs"),
            "blocked_by_workorder_ids": f.many2many("mrp.workorder", "Blocked By"),
            "costs_hour": f.floating("Cost per hour"),
            "move_raw_ids": f.one2many("stock.move", "workorder_id", "Components"),
        }

    def display_name(self, record_id: int) -> str:
        row = self.row_or_none(record_id)
        if row is None:
            return ""
        production = lookup.productions(self.env).get(int(row["production_id"]), "name")
        return f"{production} - {row.get('name')}"

    def _touch(self, ids: list[int]) -> None:
        productions = {
            int(row["production_id"]) for row in (self.row_or_none(i) for i in ids) if row
        }
        siblings = set(ids)
        for production in productions:
            siblings |= self.env.db.lookup(self._name, "production_id", production)
        self.env.mark_dirty(self._name, siblings)
        self.env.mark_dirty("mrp.production", productions)

    # -- creation and links ------------------------------------------------------------------

    def create_for(self, production_id: int, quantity: float | None = None) -> list[int]:
        """Work orders for the BOM's active operations, in operation order."""
        productions = lookup.productions(self.env)
        operations = lookup.operations(self.env)
        bom = productions.get(production_id, "bom_id")
        if not bom:
            return []
        created = []
        for operation in operations.search_ids([["bom_id", "=", bom]], order="sequence, id"):
            op = operations.row(operation)
            created.append(
                self.new(
                    {
                        "name": op["name"],
                        "production_id": production_id,
                        "workcenter_id": op["workcenter_id"],
                        "operation_id": operation,
                        "sequence": op.get("sequence") or 100,
                    }
                )
            )
        for record_id in created:
            self.env.db.update(
                self._name,
                record_id,
                {"duration_expected": self.expected_duration(record_id, quantity)},
            )
        return created

    def link(self, production_id: int) -> None:
        """At confirmation: chain the work orders and give each component its work order."""
        ids = self.search_ids([["production_id", "=", production_id]], order="sequence, id")
        for previous, current in itertools.pairwise(ids):
            self.env.db.update(self._name, current, {"blocked_by_workorder_ids": [previous]})
        if not ids:
            return
        moves = lookup.moves(self.env)
        by_operation = {self.get(i, "operation_id"): i for i in ids}
        for move_id in lookup.productions(self.env).raw_moves(production_id):
            operation = moves.get(move_id, "operation_id")
            self.env.db.update(
                "stock.move", move_id, {"workorder_id": by_operation.get(operation, ids[-1])}
            )
        self._touch(ids)

    def expected_duration(self, record_id: int, quantity: float | None = None) -> float:
        """Setup + cleanup + cycles x cycle time, corrected by the work centre's efficiency."""
        row = self.row(record_id)
        workcenters = self.env.sudo()["mrp.workcenter"]
        center = workcenters.row(int(row["workcenter_id"]))
        if quantity is None:
            producing = float(self.get(record_id, "qty_producing") or 0.0)
            production = float(self.get(record_id, "qty_production") or 0.0)
            quantity = producing or production
        capacity = float(center.get("default_capacity") or 1.0)
        cycles = math.ceil(quantity / capacity - EPSILON)
        operation = row.get("operation_id")
        cycle_time = (
            float(lookup.operations(self.env).get(int(operation), "time_cycle"))
            if operation
            else 0.0
        )
        efficiency = float(center.get("time_efficiency") or 100.0)
        setup = float(center.get("time_start") or 0.0) + float(center.get("time_stop") or 0.0)
        return round(setup + cycles * cycle_time * 100.0 / efficiency, 2)

    def recompute(self, ids: list[int]) -> None:
        """State from blocking work orders and component readiness; expected duration."""
        productions = lookup.productions(self.env)
        for record_id in ids:
            row = self.row(record_id)
            production = productions.row(int(row["production_id"]))
            changes: dict[str, Any] = {}
            state = row.get("state")
            if state not in ("done", "cancel"):
                producing = float(production.get("qty_producing") or 0.0)
                if (
                    producing
                    and abs(producing - float(production.get("product_qty") or 0)) > EPSILON
                ):
                    expected = self.expected_duration(record_id)
                    if expected != row.get("duration_expected"):
                        changes["duration_expected"] = expected
            if production.get("state") != "draft":
                new_state = self._state(row, production)
                if new_state != state:
                    changes["state"] = new_state
            if changes:
                self.env.db.update(self._name, record_id, changes)
                self._touch([record_id])

    def _state(self, row: Mapping[str, Any], production: Mapping[str, Any]) -> Any:
        state = row.get("state")
        waiting_states = (
            ("blocked", "ready") if self.env.version >= 19 else ("pending", "waiting", "ready")
        )
        if state not in waiting_states:
            return state
        blocked = any(
            self.get(i, "state") not in ("done", "cancel")
            for i in row.get("blocked_by_workorder_ids") or []
            if self.env.db.exists(self._name, i)
        )
        if self.env.version >= 19:
            return "blocked" if blocked else "ready"
        if blocked:
            return "pending"
        reservation = production.get("reservation_state")
        if reservation == "assigned":
            return "ready"
        if reservation in ("waiting", "confirmed"):
            return "waiting"
        return state

    def cancel(self, ids: list[int]) -> None:
        """Cancel work orders that are not done, closing their open time logs."""
        for record_id in ids:
            if self.get(record_id, "state") not in ("done", "cancel"):
                self._end_logs(record_id, only_user=False)
                self.update([record_id], {"state": "cancel"})

    # -- time logs -------------------------------------------------------------------------------

    def _open_logs(self, record_id: int, only_user: bool) -> list[int]:
        logs = self.env.sudo()["mrp.workcenter.productivity"]
        return [
            i
            for i in logs.search_ids([["workorder_id", "=", record_id]])
            if not logs.get(i, "date_end")
            and (not only_user or logs.get(i, "user_id") == self.env.uid)
        ]

    def _end_logs(self, record_id: int, only_user: bool) -> None:
        logs = self.env.sudo()["mrp.workcenter.productivity"]
        logs.update(self._open_logs(record_id, only_user), {"date_end": self.env.now()})

    def _start_log(self, record_id: int) -> None:
        row = self.row(record_id)
        users = lookup.users(self.env)
        over = float(self.get(record_id, "duration")) >= float(row.get("duration_expected") or 0)
        self.env.sudo()["mrp.workcenter.productivity"].new(
            {
                "workorder_id": record_id,
                "workcenter_id": row["workcenter_id"],
                "description": f"Time Tracking: {users.display_name(self.env.uid)}",
                "loss_id": PERFORMANCE_LOSS
                if over and row.get("duration_expected")
                else PRODUCTIVE_LOSS,
                "date_start": self.env.now(),
                "user_id": self.env.uid,
            }
        )

    def add_duration(self, record_id: int, minutes: float) -> None:
        """Log ``minutes`` ending now (what writing ``duration`` does in Odoo)."""
        row = self.row(record_id)
        end = datetime.strptime(self.env.now(), DATETIME_FORMAT)
        start = end - timedelta(minutes=minutes)
        self.env.sudo()["mrp.workcenter.productivity"].new(
            {
                "workorder_id": record_id,
                "workcenter_id": row["workcenter_id"],
                "loss_id": PRODUCTIVE_LOSS,
                "date_start": start.strftime(DATETIME_FORMAT),
                "date_end": end.strftime(DATETIME_FORMAT),
            }
        )

    # -- RPC ---------------------------------------------------------------------------------------

    @public(access=("write",))
    def button_start(self, ids: list[int], raise_on_invalid_state: bool = False) -> Any:
        """Start: open a time log, put the WO and its MO in progress (None from 18)."""
        productions = lookup.productions(self.env)
        for record_id in ids:
            if self._open_logs(record_id, only_user=True):
                continue
            state = self.get(record_id, "state")
            if state in ("done", "cancel"):
                if raise_on_invalid_state:
                    continue
                raise UserError("You cannot start a work order that is already done or cancelled")
            self._start_log(record_id)
            production = int(self.get(record_id, "production_id"))
            if productions.get(production, "state") != "progress":
                productions.update([production], {"date_start": self.env.now()})
            if not float(productions.get(production, "qty_producing") or 0.0):
                serial = tracking_of(self.env, int(productions.get(production, "product_id")))
                quantity = (
                    1.0 if serial == "serial" else float(self.get(record_id, "qty_remaining"))
                )
                self._set_qty_producing([record_id], quantity)
            if state != "progress":
                self.update([record_id], {"state": "progress", "date_start": self.env.now()})
        return True if self.env.version == 17 else None

    @public(access=("write",))
    def button_pending(self, ids: list[int]) -> Any:
        """Pause: close the user's open time log; the WO stays in progress (None from 18)."""
        for record_id in ids:
            self._end_logs(record_id, only_user=True)
        return True if self.env.version == 17 else None

    @public(access=("write",))
    def button_finish(self, ids: list[int]) -> bool:
        """Finish: close every time log, pick the WO's components (18+), mark it done."""
        moves = lookup.moves(self.env)
        productions = lookup.productions(self.env)
        for record_id in ids:
            row = self.row(record_id)
            if row.get("state") in ("done", "cancel"):
                continue
            self._end_logs(record_id, only_user=False)
            production = int(row["production_id"])
            if self.env.version >= 18:
                producing = float(productions.get(production, "qty_producing") or 0.0) or float(
                    productions.get(production, "product_qty")
                )
                for move_id in moves.search_ids([["workorder_id", "=", record_id]]):
                    move = moves.row(move_id)
                    if move.get("picked") or move.get("state") in ("done", "cancel"):
                        continue
                    factor = float(moves.value(move, "unit_factor"))
                    moves.set_quantity(move_id, round(producing * factor, 4))
                    moves.update([move_id], {"picked": True})
            now = self.env.now()
            produced = (
                float(row.get("qty_produced") or 0.0)
                or float(self.get(record_id, "qty_producing") or 0.0)
                or float(self.get(record_id, "qty_production") or 0.0)
            )
            values: dict[str, Any] = {
                "qty_produced": produced,
                "state": "done",
                "date_finished": now,
            }
            if not row.get("date_start"):
                values["date_start"] = now
            self.update([record_id], values)
        return True

    @public(access=("write",), versions=frozenset({17, 18}))
    def button_done(self, ids: list[int]) -> bool:
        """Mark done without the finish logic (17, 18 only)."""
        if any(self.get(i, "state") in ("done", "cancel") for i in ids):
            raise UserError("A Manufacturing Order is already done or cancelled.")
        for record_id in ids:
            self._end_logs(record_id, only_user=False)
            self.update([record_id], {"state": "done", "date_finished": self.env.now()})
        return True

    def _set_qty_producing(self, ids: list[int], value: Any) -> None:
        productions = lookup.productions(self.env)
        for record_id in ids:
            production = int(self.get(record_id, "production_id"))
            quantity = float(value or 0.0)
            if quantity and float(productions.get(production, "qty_producing") or 0.0) != quantity:
                productions.update([production], {"qty_producing": quantity})
                productions.apply_qty_producing(production)


def _from_mo(name: str) -> Any:
    def compute(model: Model, row: Mapping[str, Any]) -> Any:
        return lookup.productions(model.env).get(int(row["production_id"]), name)

    return compute


def _remaining(model: Model, row: Mapping[str, Any]) -> float:
    production = float(
        lookup.productions(model.env).get(int(row["production_id"]), "product_qty") or 0.0
    )
    return max(round(production - float(row.get("qty_produced") or 0.0), 4), 0.0)


def _duration(model: Model, row: Mapping[str, Any]) -> float:
    logs = model.env.sudo()["mrp.workcenter.productivity"]
    total = sum(
        float(logs.get(i, "duration"))
        for i in model.env.db.lookup("mrp.workcenter.productivity", "workorder_id", row["id"])
    )
    return round(total, 2)


def _user_working(model: Model, row: Mapping[str, Any]) -> bool:
    logs = model.env.sudo()["mrp.workcenter.productivity"]
    return any(
        not logs.get(i, "date_end") and logs.get(i, "user_id") == model.env.uid
        for i in model.env.db.lookup("mrp.workcenter.productivity", "workorder_id", row["id"])
    )


def _working_state(model: Model, row: Mapping[str, Any]) -> Any:
    return model.env.sudo()["mrp.workcenter"].get(int(row["workcenter_id"]), "working_state")
