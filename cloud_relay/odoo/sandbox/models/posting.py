"""Posting moves (``stock.move._action_done``): lot checks, then each line takes its quantity
from the source quant and adds it to the destination quant. Stock may go negative; when it does,
reservations of other open lines on that quant are taken back, as Odoo's ``_free_reservation``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud_relay.odoo.sandbox.errors import UserError
from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.move_line import RESERVED
from cloud_relay.odoo.sandbox.models.product import is_storable, tracking_of

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.move import Move

EPSILON = 1e-9


def post_moves(moves: Move, ids: list[int]) -> None:
    """Post moves: check lots, move quants line by line, mark lines and moves done."""
    lines = lookup.move_lines(moves.env)
    pending = [i for i in ids if moves.get(i, "state") not in ("done", "cancel")]
    all_lines: list[int] = []
    for record_id in pending:
        for line_id in moves.line_ids(record_id):
            if float(lines.get(line_id, "quantity") or 0.0) < -EPSILON:
                raise UserError("No negative quantities allowed")
            if float(lines.get(line_id, "quantity") or 0.0) <= EPSILON:
                lines.remove([line_id])
            else:
                all_lines.append(line_id)
    _check_lots(moves, all_lines)
    posted: set[int] = set()
    for line_id in sorted(all_lines):
        _post_line(moves, line_id, posted)
        posted.add(line_id)
    for record_id in pending:
        moves.update([record_id], {"state": "done", "date": moves.env.now(), "picked": True})


def _check_lots(moves: Move, line_ids: list[int]) -> None:
    lines = lookup.move_lines(moves.env)
    lots = lookup.lots(moves.env)
    types = moves.env.sudo()["stock.picking.type"]
    products = lookup.products(moves.env)
    missing: list[str] = []
    for line_id in line_ids:
        row = lines.row(line_id)
        product = int(row["product_id"])
        if tracking_of(moves.env, product) == "none" or row.get("lot_id"):
            continue
        picking_type = moves.get(int(row["move_id"]), "picking_type_id")
        if not picking_type:
            continue
        if types.get(picking_type, "use_create_lots") and row.get("lot_name"):
            lot = lots.new({"name": row["lot_name"], "product_id": product})
            lines.update([line_id], {"lot_id": lot})
            continue
        if not types.get(picking_type, "use_create_lots") and not types.get(
            picking_type, "use_existing_lots"
        ):
            continue
        name = products.display_name(product)
        if name not in missing:
            missing.append(name)
    if not missing:
        return
    if moves.env.version == 17:
        raise UserError(
            "You need to supply a Lot/Serial Number for product: \n - " + "\n - ".join(missing)
        )
    listing = "\n".join(f"- {name}" for name in missing)
    raise UserError(f"You need to supply a Lot/Serial Number for product:\n{listing}")


def _post_line(moves: Move, line_id: int, posted: set[int]) -> None:
    lines = lookup.move_lines(moves.env)
    quants = lookup.quants(moves.env)
    locations = lookup.locations(moves.env)
    lines.release(line_id)
    row = lines.row(line_id)
    product = int(row["product_id"])
    lot = row.get("lot_id") or None
    source, dest = int(row["location_id"]), int(row["location_dest_id"])
    quantity = lines.product_quantity(row)
    if is_storable(moves.env, product):
        free = quants.add_available(product, source, -quantity, lot)
        quants.add_available(product, dest, quantity, lot)
        if free < -EPSILON and not locations.bypasses_reservation(source):
            _free_reservation(moves, product, source, lot, -free, posted | {line_id})
    lines.update([line_id], {"picked": True, "date": moves.env.now()})


def _free_reservation(
    moves: Move, product: int, location: int, lot: int | None, deficit: float, ignore: set[int]
) -> None:
    """Take back reservations of other open lines that the posted stock no longer covers."""
    lines = lookup.move_lines(moves.env)
    candidates = []
    for line_id in moves.env.db.lookup("stock.move.line", "product_id", product):
        row = lines.row(line_id)
        if (
            line_id in ignore
            or not row.get("move_id")
            or row.get("location_id") != location
            or (row.get("lot_id") or None) != lot
            or row.get("picked")
            or float(row.get(RESERVED) or 0.0) <= EPSILON
            or moves.get(int(row["move_id"]), "state") in ("done", "cancel")
        ):
            continue
        candidates.append(line_id)
    to_reassign: set[int] = set()
    for line_id in sorted(candidates, reverse=True):
        row = lines.row(line_id)
        held = float(row.get(RESERVED) or 0.0)
        to_reassign.add(int(row["move_id"]))
        if held <= deficit + EPSILON:
            lines.remove([line_id])
            deficit -= held
        else:
            lines.release(line_id, deficit)
            quantity = float(row.get("quantity") or 0.0) - deficit
            moves.env.db.update("stock.move.line", line_id, {"quantity": round(quantity, 6)})
            deficit = 0.0
        if deficit <= EPSILON:
            break
    moves._touch(sorted(to_reassign))
    moves.assign(sorted(to_reassign))
