"""``mrp.production.button_mark_done``: Odoo's ordered pipeline (contract §4.6, §4.7).

sanity -> quantity-0 handling (per version) -> consumption wizard -> backorder wizard
(18 and 19 honour the operation type's ``create_backorder``) -> split backorders -> finish work
orders -> post inventory (unpicked components are cancelled) -> close. The context keys
``skip_consumption``, ``skip_backorder``, ``mo_ids_to_backorder``, ``always_backorder_mo_ids``
and ``skip_redirection`` steer it as in Odoo.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.actions import window_action
from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.backorders import split_backorders
from cloud_relay.odoo.sandbox.models.consumption import consumption_issues
from cloud_relay.odoo.sandbox.models.product import round_to, tracking_of

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.production import Production

EPSILON = 1e-9
_SUFFIX = re.compile(r"-\d+$")


def button_mark_done(productions: Production, ids: list[int]) -> Any:
    """Run the pipeline on ``ids``; True, a wizard action, a backorder action, or None (19)."""
    env = productions.env
    result = _pre_mark_done(productions, ids)
    if result is not True:
        return result
    wanted = env.context.get("mo_ids_to_backorder") or []
    backorders = split_backorders(productions, [i for i in ids if i in wanted])
    workorders = lookup.workorders(env)
    moves = lookup.moves(env)
    for record_id in ids:
        open_workorders = [
            w
            for w in productions.get(record_id, "workorder_ids")
            if workorders.get(w, "state") not in ("done", "cancel")
        ]
        workorders.button_finish(open_workorders)
    for record_id in ids:
        _post_inventory(productions, record_id)
    for record_id in ids:
        leftover = [
            m
            for m in productions.raw_moves(record_id) + productions.finished_moves(record_id)
            if moves.get(m, "state") not in ("done", "cancel")
        ]
        if leftover:
            moves.update(leftover, {"state": "done", "product_uom_qty": 0.0})
        productions.update(
            [record_id],
            {"state": "done", "date_finished": env.now(), "is_locked": True, "priority": "0"},
        )
    if env.context.get("skip_redirection") or not backorders:
        return True
    context = {k: (False if k.startswith("skip_") else v) for k, v in env.context.items()}
    context["mo_ids_to_backorder"] = None
    action: dict[str, Any] = {
        "res_model": "mrp.production",
        "type": "ir.actions.act_window",
        "context": context,
    }
    if len(backorders) == 1:
        action.update({"views": [[False, "form"]], "view_mode": "form", "res_id": backorders[0]})
    else:
        action.update(
            {
                "name": "Backorder MO",
                "domain": [["id", "in", backorders]],
                "views": [[False, "list"], [False, "form"]],
                "view_mode": "list,form",
            }
        )
    return action


def _pre_mark_done(productions: Production, ids: list[int]) -> Any:
    env = productions.env
    version = env.version
    if version == 17:
        for record_id in ids:
            if _producing(productions, record_id) <= EPSILON:
                _set_quantities(productions, record_id)
            if _producing(productions, record_id) <= EPSILON:
                raise UserError("The quantity to produce must be positive!")
    elif version == 18:
        auto = []
        for record_id in ids:
            if _producing(productions, record_id) > EPSILON:
                _pick_manual(productions, record_id)
            elif _auto_checks(productions, record_id):
                auto.append(record_id)
            else:
                return _mass_produce(productions, record_id)
        for record_id in auto:
            _set_quantities(productions, record_id)
    else:
        auto = [i for i in ids if _auto_checks(productions, i)]
        missing = [i for i in ids if i not in auto and not productions.producing_lots(i)]
        if len(missing) > 1:
            raise UserError(
                "You need to generate Lot/Serial Number(s) to mark as done some productions"
            )
        if missing:
            return productions.action_generate_serial(missing)
        for record_id in auto:
            _set_quantities(productions, record_id)
        for record_id in ids:
            if _producing(productions, record_id) > EPSILON:
                _pick_manual(productions, record_id)
    issues = consumption_issues(productions, ids)
    if issues:
        return _consumption_wizard(productions, issues)
    if env.context.get("skip_backorder"):
        return True
    short = [
        i
        for i in ids
        if float(productions.get(i, "product_qty")) - _producing(productions, i) > EPSILON
    ]
    if not short:
        return True
    if version == 17:
        return _backorder_wizard(productions, short, [])
    types = env.sudo()["stock.picking.type"]
    ask, always = [], []
    for record_id in short:
        policy = types.get(int(productions.get(record_id, "picking_type_id")), "create_backorder")
        if policy == "always":
            always.append(record_id)
        elif policy != "never":
            ask.append(record_id)
    if ask:
        return _backorder_wizard(productions, ask, always)
    if always:
        extra = {"marked_as_done": True} if version >= 19 else {}
        again = productions.__class__(
            env.with_context(skip_backorder=True, mo_ids_to_backorder=always, **extra)
        )
        return button_mark_done(again, ids)
    return True


def _producing(productions: Production, record_id: int) -> float:
    return float(productions.get(record_id, "qty_producing") or 0.0)


def _pick_manual(productions: Production, record_id: int) -> None:
    moves = lookup.moves(productions.env)
    manual = [
        m
        for m in productions.raw_moves(record_id)
        if moves.get(m, "manual_consumption")
        and not moves.get(m, "picked")
        and moves.get(m, "state") not in ("done", "cancel")
    ]
    if manual:
        moves.update(manual, {"picked": True})


def _auto_checks(productions: Production, record_id: int) -> bool:
    env = productions.env
    moves = lookup.moves(env)
    products = {
        int(moves.get(m, "product_id"))
        for m in productions.raw_moves(record_id) + productions.finished_moves(record_id)
    }
    if all(tracking_of(env, p) == "none" for p in products):
        return True
    if float(productions.get(record_id, "product_uom_qty")) == 1.0:
        return True
    product = int(productions.get(record_id, "product_id"))
    reservation = productions.get(record_id, "reservation_state")
    return tracking_of(env, product) != "serial" and reservation in (
        "assigned",
        "confirmed",
        "waiting",
    )


def _set_quantities(productions: Production, record_id: int) -> None:
    """Odoo's ``_set_quantities``: a lot if needed, the remaining quantity, the components."""
    env = productions.env
    product = int(productions.get(record_id, "product_id"))
    tracking = tracking_of(env, product)
    if tracking in ("lot", "serial") and not productions.producing_lots(record_id):
        productions.action_generate_serial([record_id])
    if _producing(productions, record_id) <= EPSILON:
        remaining = float(productions.get(record_id, "product_qty")) - float(
            productions.get(record_id, "qty_produced")
        )
        productions.update(
            [record_id], {"qty_producing": 1.0 if tracking == "serial" else remaining}
        )
        productions.apply_qty_producing(record_id)
    moves = lookup.moves(env)
    lines = lookup.move_lines(env)
    missing = ""
    for move_id in productions.raw_moves(record_id):
        move = moves.row(move_id)
        if move.get("state") in ("done", "cancel") or not move.get("manual_consumption"):
            continue
        if tracking_of(env, int(move["product_id"])) == "none":
            continue
        lot_missing = any(
            not lines.get(line, "lot_id")
            for line in moves.line_ids(move_id)
            if lines.get(line, "quantity") and lines.get(line, "picked")
        )
        if not move.get("picked") or lot_missing:
            missing += (
                f"\n  - {env.sudo()['product.product'].display_name(int(move['product_id']))}"
            )
    if missing:
        raise UserError(
            f"You need to supply Lot/Serial Number for products and 'consume' them: {missing}"
        )


def _mass_produce(productions: Production, record_id: int) -> dict[str, Any]:
    return window_action(
        productions.env.version,
        "mrp.action_mrp_batch_produce",
        0,
        "Batch Produce",
        "mrp.batch.produce",
        {"default_production_id": record_id},
    )


def _consumption_wizard(productions: Production, issues: list[dict[str, Any]]) -> dict[str, Any]:
    ids = sorted({issue["mrp_production_id"] for issue in issues})
    context = {
        "default_mrp_production_ids": ids,
        "default_mrp_consumption_warning_line_ids": [[0, 0, issue] for issue in issues],
        "form_view_ref": False,
    }
    return window_action(
        productions.env.version,
        "mrp.action_mrp_consumption_warning",
        303,
        "Consumption Warning",
        "mrp.consumption.warning",
        context,
    )


def _backorder_wizard(productions: Production, ids: list[int], always: list[int]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if productions.env.version >= 18:
        context["always_backorder_mo_ids"] = always
    context["default_mrp_production_ids"] = ids
    context["default_mrp_production_backorder_line_ids"] = [
        [0, 0, {"mrp_production_id": i, "to_backorder": True}] for i in ids
    ]
    return window_action(
        productions.env.version,
        "mrp.action_mrp_production_backorder",
        302,
        "You produced less than initial demand",
        "mrp.production.backorder",
        context,
    )


def _post_inventory(productions: Production, record_id: int) -> None:
    """Consume picked components, cancel unpicked ones, produce the finished quantity."""
    env = productions.env
    moves = lookup.moves(env)
    lines = lookup.move_lines(env)
    to_do, to_cancel = [], []
    for move_id in productions.raw_moves(record_id):
        move = moves.row(move_id)
        if move.get("state") in ("done", "cancel"):
            continue
        if not move.get("picked"):
            to_cancel.append(move_id)
            continue
        to_do.append(move_id)
        lines.remove([line for line in moves.line_ids(move_id) if not lines.get(line, "picked")])
        if not float(move.get("product_uom_qty") or 0.0) and moves.get(move_id, "quantity"):
            moves.update([move_id], {"product_uom_qty": moves.get(move_id, "quantity")})
    moves.cancel(to_cancel)
    moves.action_done(to_do)
    row = productions.row(record_id)
    produced = float(productions.get(record_id, "qty_produced"))
    rounding = float(lookup.uoms(env).get(int(row["product_uom_id"]), "rounding"))
    quantity = round_to(float(row.get("qty_producing") or 0.0) - produced, rounding)
    lots = productions.producing_lots(record_id)
    finished = [
        m
        for m in productions.finished_moves(record_id)
        if moves.get(m, "state") not in ("done", "cancel")
    ]
    for move_id in finished:
        if moves.get(move_id, "product_id") != row["product_id"]:
            continue
        moves.set_quantity(move_id, quantity)
        if lots:
            lines.update(moves.line_ids(move_id), {"lot_id": lots[0]})
    workorders = lookup.workorders(env)
    for workorder in productions.get(record_id, "workorder_ids"):
        if float(workorders.get(workorder, "duration")) == 0.0:
            workorders.add_duration(
                workorder, float(workorders.get(workorder, "duration_expected"))
            )
    if finished:
        moves.update(finished, {"picked": True})
        moves.action_done(finished)
