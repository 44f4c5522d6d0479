"""An MO's derived fields: ``state`` and ``reservation_state`` from its moves and work orders
(Odoo's ``_compute_state`` and ``_compute_reservation_state``; the previous state is an input, so
a draft MO stays draft until confirmed and a done MO stays done), and the read-time computes
(``qty_produced``, ``scrap_count``, durations...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.product import tracking_of

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.production import Production
    from cloud_relay.odoo.sandbox.orm import Model

EPSILON = 1e-9


def recompute_states(productions: Production, ids: list[int]) -> None:
    """Store the ``state`` and ``reservation_state`` the MOs' moves and work orders imply."""
    moves = lookup.moves(productions.env)
    workorders = lookup.workorders(productions.env)
    for record_id in ids:
        row = productions.row(record_id)
        raw = [moves.row(i) for i in productions.raw_moves(record_id)]
        finished = [moves.row(i) for i in productions.finished_moves(record_id)]
        wo_states = [
            workorders.get(i, "state") for i in productions.get(record_id, "workorder_ids")
        ]
        state = _state(row, raw, finished, wo_states)
        reservation = _reservation(state, raw)
        changes: dict[str, Any] = {}
        if state != row.get("state"):
            changes["state"] = state
        if reservation != row.get("reservation_state"):
            changes["reservation_state"] = reservation
            productions.env.mark_dirty("mrp.workorder", productions.get(record_id, "workorder_ids"))
        if changes:
            productions.env.db.update(productions._name, record_id, changes)


def _state(
    row: Mapping[str, Any],
    raw: list[Mapping[str, Any]],
    finished: list[Mapping[str, Any]],
    wo_states: list[Any],
) -> str:
    previous = row.get("state") or "draft"
    closed = ("done", "cancel")
    if previous == "cancel" or (finished and all(m.get("state") == "cancel" for m in finished)):
        return "cancel"
    if previous == "done" or (
        raw
        and all(m.get("state") in closed for m in raw)
        and all(m.get("state") in closed for m in finished)
    ):
        return "done"
    producing = float(row.get("qty_producing") or 0.0)
    if wo_states and all(s in closed for s in wo_states):
        return "to_close"
    if not wo_states and producing >= float(row.get("product_qty") or 0.0) - EPSILON:
        return "to_close"
    if any(s in ("progress", "done") for s in wo_states):
        return "progress"
    if abs(producing) > EPSILON or any(m.get("picked") for m in raw):
        return "progress"
    return str(previous)


def _reservation(state: str, raw: list[Mapping[str, Any]]) -> str | None:
    if state in ("draft", "done", "cancel"):
        return None
    pending = [m.get("state") for m in raw if m.get("state") not in ("done", "cancel")]
    if not pending or any(s in ("assigned", "partially_available") for s in pending):
        return "assigned"
    if any(s == "waiting" for s in pending):
        return "waiting"
    if all(s == "draft" for s in pending):
        return None
    return "confirmed"


def template(model: Model, row: Mapping[str, Any]) -> Any:
    """``product_tmpl_id``: the product's template."""
    return lookup.products(model.env).get(int(row["product_id"]), "product_tmpl_id")


def tracking(model: Model, row: Mapping[str, Any]) -> Any:
    """``product_tracking``: the product's tracking."""
    return tracking_of(model.env, int(row["product_id"]))


def uom_qty(model: Model, row: Mapping[str, Any]) -> float:
    """``product_uom_qty``: the quantity in the product's unit."""
    product_uom = lookup.products(model.env).get(int(row["product_id"]), "uom_id")
    return lookup.uoms(model.env).convert(
        float(row.get("product_qty") or 0.0), row.get("product_uom_id"), product_uom
    )


def qty_produced(model: Model, row: Mapping[str, Any]) -> float:
    """``qty_produced``: picked quantity of the non-cancelled finished moves of the product."""
    moves = lookup.moves(model.env)
    total = 0.0
    for move_id in model.env.db.lookup("stock.move", "production_id", row["id"]):
        move = moves.row(move_id)
        if (
            move.get("state") != "cancel"
            and move.get("product_id") == row.get("product_id")
            and move.get("picked")
            and not move.get("scrap_id")
        ):
            total += float(moves.value(move, "quantity"))
    return round(total, 6)


def scrap_count(model: Model, row: Mapping[str, Any]) -> int:
    """``scrap_count``: scraps tied to the MO."""
    return len(lookup.scraps(model.env).search_ids([["production_id", "=", row["id"]]]))


def duration(name: str) -> Any:
    """A compute summing the work orders' ``name`` (``duration`` or ``duration_expected``)."""

    def compute(model: Model, row: Mapping[str, Any]) -> float:
        workorders = lookup.workorders(model.env)
        return round(
            sum(
                float(workorders.get(i, name))
                for i in workorders.search_ids([["production_id", "=", row["id"]]])
            ),
            2,
        )

    return compute
