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
        reservation = _reservation(productions, record_id, state, raw)
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


_RANK = {"assigned": 4, "waiting": 3, "partially_available": 2, "confirmed": 1}


def _reservation(
    productions: Production, record_id: int, state: str, raw: list[Mapping[str, Any]]
) -> str | None:
    """``reservation_state``: the telling state among the unpicked components with a demand;
    partly reserved counts as not ready, unless a BOM "as soon as possible" can start its first
    operation."""
    if state in ("draft", "done", "cancel"):
        return None
    relevant = [m for m in raw if not m.get("picked") and _demand(m) > EPSILON]
    moves_state = _relevant_state(relevant)
    if moves_state == "partially_available":
        return _ready_to_produce(productions, record_id, raw)
    return None if moves_state == "draft" else moves_state


def _demand(move: Mapping[str, Any]) -> float:
    return abs(float(move.get("product_uom_qty") or 0.0))


def _relevant_state(moves: list[Mapping[str, Any]]) -> str:
    """The state that sums up several moves (Odoo's ``_get_relevant_state_among_moves``)."""
    todo = [
        m
        for m in moves
        if m.get("state") not in ("cancel", "done")
        and not (m.get("state") == "assigned" and _demand(m) <= EPSILON)
    ]
    todo.sort(key=lambda m: (_RANK.get(str(m.get("state")), 0), _demand(m)))
    if not todo:
        return "assigned"
    if todo[0].get("state") != "assigned" and any(
        m.get("state") in ("assigned", "partially_available") for m in todo
    ):
        return "partially_available"
    last = todo[-1]
    if last.get("state") == "confirmed" and _demand(last) <= EPSILON:
        return "assigned"
    return str(last.get("state") or "draft")


def _ready_to_produce(productions: Production, record_id: int, raw: list[Mapping[str, Any]]) -> str:
    bom = productions.get(record_id, "bom_id")
    workorders = lookup.workorders(productions.env)
    operations: list[int] = []
    for workorder in productions.get(record_id, "workorder_ids"):
        operation = workorders.get(workorder, "operation_id")
        if operation and operation not in operations:
            operations.append(int(operation))
    asap = bool(bom) and lookup.boms(productions.env).get(int(bom), "ready_to_produce") == "asap"
    if not operations or not asap:
        return "confirmed"
    first = (
        raw if len(operations) == 1 else [m for m in raw if m.get("operation_id") == operations[0]]
    )
    ready = all(m.get("state") == "assigned" for m in first if m.get("bom_line_id"))
    return "assigned" if ready else "confirmed"


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
