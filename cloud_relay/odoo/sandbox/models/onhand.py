"""On-hand figures of a product (``qty_available``, ``free_qty``, ``virtual_available``,
``incoming_qty``, ``outgoing_qty``), computed from quants and open moves like Odoo does.

The context narrows them as in Odoo: ``location`` (id, list or name), ``warehouse`` (17) or
``warehouse_id`` (18, 19), ``search_location`` / ``search_warehouse`` (19), ``lot_id``.
"""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.sandbox.models import lookup

OPEN_MOVE_STATES = ("waiting", "confirmed", "assigned", "partially_available")


def _location_ids(env: Any) -> set[int]:
    """Internal locations in scope: the context's, with their children, else all internal."""
    locations = lookup.locations(env)
    context = env.context
    keys = ["location"] + (["search_location"] if env.version >= 19 else [])
    wanted: Any = next((context[k] for k in keys if context.get(k)), None)
    warehouse_keys = ["warehouse"] if env.version == 17 else ["warehouse_id"]
    if env.version >= 19:
        warehouse_keys.append("search_warehouse")
    warehouse: Any = next((context[k] for k in warehouse_keys if context.get(k)), None)
    if wanted is None and warehouse:
        warehouses = env.sudo()["stock.warehouse"]
        ids = warehouse if isinstance(warehouse, list) else [warehouse]
        wanted = [warehouses.get(int(w), "view_location_id") for w in ids]
    if wanted is None:
        roots = locations.search_ids([["usage", "=", "internal"]])
    else:
        raw = wanted if isinstance(wanted, list) else [wanted]
        roots = []
        for item in raw:
            if isinstance(item, str):
                roots += locations.search_ids([["complete_name", "ilike", item]])
            else:
                roots.append(int(item))
    family = locations.hierarchy(roots)
    return {i for i in family if locations.is_internal(i)}


def on_hand(env: Any, product_id: int) -> dict[str, float]:
    """The five quantity fields of ``product_id`` in the context's scope."""
    env.flush()
    scope = _location_ids(env)
    lot = env.context.get("lot_id")
    quants = lookup.quants(env)
    quantity = reserved = 0.0
    for quant_id in env.db.lookup("stock.quant", "product_id", product_id):
        row = quants.row(quant_id)
        if row.get("location_id") not in scope or (lot and row.get("lot_id") != lot):
            continue
        quantity += float(row.get("quantity") or 0.0)
        reserved += float(row.get("reserved_quantity") or 0.0)
    moves = lookup.moves(env)
    incoming = outgoing = 0.0
    for move_id in env.db.lookup("stock.move", "product_id", product_id):
        row = moves.row(move_id)
        if row.get("state") not in OPEN_MOVE_STATES:
            continue
        source_in = row.get("location_id") in scope
        dest_in = row.get("location_dest_id") in scope
        qty = moves.product_qty(row)
        if source_in and not dest_in:
            outgoing += qty
        elif dest_in and not source_in:
            incoming += qty
    return {
        "qty_available": round(quantity, 6),
        "free_qty": round(quantity - reserved, 6),
        "virtual_available": round(quantity + incoming - outgoing, 6),
        "incoming_qty": round(incoming, 6),
        "outgoing_qty": round(outgoing, 6),
    }
