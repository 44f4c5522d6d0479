"""Work centres and their time logs (``mrp.workcenter``, ``mrp.workcenter.productivity``,
``mrp.workcenter.productivity.loss``).

A time log's ``duration`` is in minutes, ``round(seconds / 60, 2)``, and 0 while it is open.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cloud_relay.odoo.sandbox import fields as f
from cloud_relay.odoo.sandbox.errors import ValidationError
from cloud_relay.odoo.sandbox.fields import DATETIME_FORMAT, Field
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.orm import Model

LOSS_TYPES = ("availability", "performance", "quality", "productive")
PRODUCTIVE_LOSS = 7
PERFORMANCE_LOSS = 4


class Workcenter(Model):
    """``mrp.workcenter``."""

    _name = "mrp.workcenter"
    _description = "Work Center"
    _order = "sequence, id"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Work Center", required=True),
            "code": f.char("Code"),
            "active": f.boolean("Active", default=True),
            "sequence": f.integer("Sequence", default=1),
            "time_efficiency": f.floating("Time Efficiency", default=100.0),
            "costs_hour": f.floating("Cost per hour"),
            "default_capacity": f.floating("Capacity", default=1.0),
            "time_start": f.floating("Setup Time"),
            "time_stop": f.floating("Cleanup Time"),
            "working_state": f.selection(
                "Workcenter Status", ("normal", "blocked", "done"), default="normal"
            ),
            "company_id": f.many2one("res.company", "Company", default=1),
        }


class ProductivityLoss(Model):
    """``mrp.workcenter.productivity.loss``: why time was spent (productive, performance...)."""

    _name = "mrp.workcenter.productivity.loss"
    _description = "Workcenter Productivity Losses"
    _order = "sequence, id"

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "name": f.char("Blocking Reason", required=True),
            "sequence": f.integer("Sequence", default=1),
            "manual": f.boolean("Is a Blocking Reason", default=True),
            "loss_type": f.selection("Category", LOSS_TYPES, default="availability"),
        }


class Productivity(Model):
    """``mrp.workcenter.productivity``: one time log of a work order."""

    _name = "mrp.workcenter.productivity"
    _description = "Workcenter Productivity Log"
    _order = "id desc"
    _rec_name = "loss_id"
    _indexed = ("workorder_id",)

    @classmethod
    def define_fields(cls, version: int) -> dict[str, Field]:
        return {
            **super().define_fields(version),
            "workcenter_id": f.many2one("mrp.workcenter", "Work Center", required=True),
            "workorder_id": f.many2one("mrp.workorder", "Work Order"),
            "production_id": f.many2one(
                "mrp.production", "Manufacturing Order", compute=_production
            ),
            "user_id": f.many2one("res.users", "User", default=lambda env, vals: env.uid),
            "loss_id": f.many2one("mrp.workcenter.productivity.loss", "Loss Reason", required=True),
            "loss_type": f.selection("Effectiveness", LOSS_TYPES, compute=_loss_type),
            "description": f.text("Description"),
            "date_start": f.datetime_field(
                "Start Date", required=True, default=lambda env, vals: env.now()
            ),
            "date_end": f.datetime_field("End Date"),
            "duration": f.floating("Duration", compute=_duration),
            "company_id": f.many2one("res.company", "Company", default=1),
        }

    def _check(self, row: Mapping[str, Any]) -> None:
        workorder = row.get("workorder_id")
        if not workorder or row.get("date_end"):
            return
        open_logs = [
            i
            for i in self.env.db.lookup(self._name, "workorder_id", workorder)
            if i != row.get("id")
            and not self.row(i).get("date_end")
            and self.row(i).get("user_id") == row.get("user_id")
        ]
        if open_logs:
            name = lookup.workorders(self.env).display_name(int(workorder))
            raise ValidationError(f"The Workorder ({name}) cannot be started twice!")

    def _touch(self, ids: list[int]) -> None:
        workorders = {
            int(row["workorder_id"])
            for row in (self.row_or_none(i) for i in ids)
            if row is not None and row.get("workorder_id")
        }
        self.env.mark_dirty("mrp.workorder", workorders)


def minutes_between(start: str, end: str) -> float:
    """Minutes from ``start`` to ``end`` (Odoo datetimes), rounded to 2 decimals."""
    begin = datetime.strptime(start, DATETIME_FORMAT)
    finish = datetime.strptime(end, DATETIME_FORMAT)
    return round((finish - begin).total_seconds() / 60.0, 2)


def _duration(model: Model, row: Mapping[str, Any]) -> float:
    del model
    if not row.get("date_start") or not row.get("date_end"):
        return 0.0
    return minutes_between(str(row["date_start"]), str(row["date_end"]))


def _loss_type(model: Model, row: Mapping[str, Any]) -> Any:
    loss = row.get("loss_id")
    return (
        model.env.sudo()["mrp.workcenter.productivity.loss"].get(int(loss), "loss_type")
        if loss
        else None
    )


def _production(model: Model, row: Mapping[str, Any]) -> Any:
    workorder = row.get("workorder_id")
    return lookup.workorders(model.env).get(int(workorder), "production_id") if workorder else None
