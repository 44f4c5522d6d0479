"""Work orders: ``operation.started`` opens a time log bound to the event, ``paused`` and
``finished`` close it, and ``finished`` finishes the work order once (after reading its state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from cloud_relay.posting.effects.base import (
    UTC_CONTEXT,
    Effects,
    Item,
    Odoo,
    StepState,
    event_xmlid,
    load_failed,
    odoo_datetime,
)
from cloud_relay.posting.effects.order import check_open, mo_key, read_order
from cloud_relay.posting.lookup import Refused, many2one_id, many2one_name
from wire.events import OperationChanged

_TIME_LOG_FIELDS = [
    "id",
    "workorder_id/.id",
    "workcenter_id/.id",
    "loss_id/.id",
    "date_start",
    "description",
]


class Operations:
    """``operation.started``, ``operation.paused`` and ``operation.finished`` on an MO."""

    types: ClassVar[frozenset[str]] = frozenset(
        {"operation.started", "operation.paused", "operation.finished"}
    )

    def key(self, event_type: str, data: BaseModel) -> str | None:
        assert isinstance(data, OperationChanged)
        return mo_key(data.order)

    def fold(self, items: Sequence[Item]) -> int:
        return 1  # each is a change of state: a step of its own

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        item = step[0]
        change = item.model(OperationChanged)
        ledger = state.ledger
        client = odoo.client
        mo = await read_order(odoo, state.key, ledger)
        check_open(mo, ledger)
        workorder = await _workorder(odoo, mo, change)
        wo_key = str(workorder["id"])
        when = odoo_datetime(item.posting.occurred_at)
        effect: dict[str, Any] = {"mo": mo["name"], "workorder_id": workorder["id"]}
        if item.type == "operation.started":
            if wo_key in ledger.open_logs:
                effect["already_started"] = True
                return {item.posting.pid: effect}
            await state.save_intent({"start": wo_key})
            loss = await odoo.lookup.productive_loss()
            row = [
                event_xmlid(item.event_id),
                workorder["id"],
                many2one_id(workorder["workcenter_id"]),
                loss,
                when,
                f"plant floor: {change.operation or change.workcenter}",
            ]
            result = await client.execute(
                "mrp.workcenter.productivity", "load", _TIME_LOG_FIELDS, [row], context=UTC_CONTEXT
            )
            ids = (result or {}).get("ids")
            if not ids:
                raise load_failed("time log", result)
            ledger.open_logs[wo_key] = int(ids[0])
            effect["time_log_id"] = int(ids[0])
            return {item.posting.pid: effect}
        log_id = ledger.open_logs.pop(wo_key, None)
        if log_id is not None:
            await client.write("mrp.workcenter.productivity", [log_id], {"date_end": when})
            effect["time_log_id"] = log_id
        if item.type == "operation.finished" and workorder["state"] not in ("done", "cancel"):
            await state.save_intent({"finish": wo_key})
            await client.execute("mrp.workorder", "button_finish", [workorder["id"]])
            effect["finished"] = True
        return {item.posting.pid: effect}


async def _workorder(odoo: Odoo, mo: dict[str, Any], change: OperationChanged) -> dict[str, Any]:
    """The MO's work order the event names (by operation, else by work centre), open first."""
    workorders = await odoo.client.search_read(
        "mrp.workorder",
        [["production_id", "=", mo["id"]]],
        ["name", "workcenter_id", "state"],
        order="id",
    )
    operation, workcenter = change.operation, change.workcenter
    if operation:
        matches = [w for w in workorders if w["name"] == operation]
    else:
        matches = [w for w in workorders if many2one_name(w["workcenter_id"]) == workcenter]
        if not matches:
            matches = [
                w
                for w in workorders
                if (many2one_name(w["workcenter_id"]) or "").startswith(f"[{workcenter}]")
            ]
    if not matches:
        what = f"operation {operation!r}" if operation else f"work centre {workcenter!r}"
        names = ", ".join(repr(w["name"]) for w in workorders) or "none"
        raise Refused(
            f"manufacturing order {mo['name']} has no work order for {what} "
            f"(its work orders: {names})"
        )
    open_matches = [w for w in matches if w["state"] not in ("done", "cancel")]
    return (open_matches or matches)[0]
