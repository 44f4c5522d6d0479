"""Splitting an MO at ``qty_producing`` (Odoo's ``_split_productions``): the MO keeps what was
produced and is renamed ``NAME-001`` (its moves take the new name as name and origin); a backorder
``NAME-002`` (next free number) gets the rest, with the components split in the same ratio, and
is confirmed and reserved at once.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.models import lookup

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.production import Production

EPSILON = 1e-9
_SUFFIX = re.compile(r"-\d+$")


def split_backorders(productions: Production, ids: list[int]) -> list[int]:
    """Split each MO at ``qty_producing``: it keeps that much, a backorder gets the rest."""
    env = productions.env
    moves = lookup.moves(env)
    backorders = []
    for record_id in ids:
        row = productions.row(record_id)
        producing = float(productions.get(record_id, "qty_producing") or 0.0)
        remaining = float(row["product_qty"]) - producing
        if remaining <= EPSILON:
            continue
        base = (
            _SUFFIX.sub("", str(row["name"])) if row.get("backorder_sequence") else str(row["name"])
        )
        family = [
            i
            for i in productions.search_ids([["name", "=like", f"{base}%"]])
            if productions.get(i, "name") == base
            or str(productions.get(i, "name")).startswith(base + "-")
        ]
        sequence = max([int(productions.get(i, "backorder_sequence") or 0) for i in family] + [0])
        if not row.get("backorder_sequence"):
            sequence = max(sequence, 1)
            productions.update([record_id], {"name": f"{base}-001", "backorder_sequence": 1})
            renamed: dict[str, Any] = {"origin": f"{base}-001"}
            if "name" in moves.fields:
                renamed["name"] = f"{base}-001"
            moves.update(
                productions.raw_moves(record_id) + productions.finished_moves(record_id), renamed
            )
        sequence += 1
        factors = {
            m: float(moves.value(moves.row(m), "unit_factor"))
            for m in productions.raw_moves(record_id)
        }
        values: dict[str, Any] = {
            name: row.get(name)
            for name in (
                "product_id",
                "product_uom_id",
                "bom_id",
                "picking_type_id",
                "location_src_id",
                "location_dest_id",
                "origin",
                "user_id",
                "company_id",
                "consumption",
                "procurement_group_id",
            )
            if name in productions.fields
        }
        backorder = productions.new(
            {
                **{k: (v if v is not None else False) for k, v in values.items()},
                "name": f"{base}-{sequence:03d}",
                "backorder_sequence": sequence,
                "product_qty": remaining,
                "move_raw_ids": [],
            }
        )
        for move_id, factor in factors.items():
            move = moves.row(move_id)
            if move.get("state") in ("done", "cancel"):
                continue
            moves.update([move_id], {"product_uom_qty": round(producing * factor, 4)})
            moves.new(
                {
                    "raw_material_production_id": backorder,
                    "product_id": move["product_id"],
                    "product_uom": move["product_uom"],
                    "product_uom_qty": round(remaining * factor, 4),
                    "bom_line_id": move.get("bom_line_id") or False,
                    "operation_id": move.get("operation_id") or False,
                    "manual_consumption": bool(move.get("manual_consumption")),
                    "sequence": move.get("sequence") or 10,
                }
            )
        for move_id in productions.finished_moves(record_id):
            if moves.get(move_id, "state") not in ("done", "cancel"):
                moves.update([move_id], {"product_uom_qty": producing})
        productions.update([record_id], {"product_qty": producing})
        productions.action_confirm([backorder])
        backorders.append(backorder)
    return backorders
