"""Defaults a move takes from its picking, and 17/18's required move ``name`` there."""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox.errors import ValidationError
from cloud_relay.odoo.sandbox.orm import Model


def picking_move_values(moves: Model, vals: dict[str, Any]) -> dict[str, Any]:
    """Locations and operation type from the picking; on 17/18 a move without ``name`` fails
    as Odoo's NOT NULL constraint does (19 has no such field)."""
    picking = moves.env.sudo()["stock.picking"].row(int(vals["picking_id"]))
    for name in ("location_id", "location_dest_id", "picking_type_id"):
        vals[name] = vals.get(name) or picking.get(name)
    if "name" in moves.fields and not vals.get("name"):
        raise ValidationError(
            "The operation cannot be completed:\n"
            "- Create/update: a mandatory field is not set.\n"
            "- Delete: another model requires the record being deleted. "
            "If possible, archive it instead.\n\n"
            "Model: Stock Move (stock.move)\n"
            "Field: Description (name)\n"
        )
    return vals
