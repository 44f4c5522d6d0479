"""The component moves of an MO set to the cumulative consumption the floor reported."""

from __future__ import annotations

from typing import Any

from cloud_relay.posting.effects.base import Drift, Odoo
from cloud_relay.posting.ledger import OrderLedger, line_key, same, split_line_key
from cloud_relay.posting.lookup import Product, many2one_id

_MOVE_FIELDS = ("product_id", "quantity", "picked", "state", "move_line_ids")


async def component_commands(
    odoo: Odoo,
    mo: dict[str, Any],
    products: dict[str, Product],
    targets: dict[str, float],
    ledger: OrderLedger,
    intent: dict[str, Any],
) -> list[list[Any]]:
    """Commands on ``move_raw_ids`` setting each component to its cumulative target."""
    client = odoo.client
    moves = await client.search_read(
        "stock.move",
        [
            ["raw_material_production_id", "=", mo["id"]],
            ["state", "not in", ["done", "cancel"]],
        ],
        _MOVE_FIELDS,
        order="id",
    )
    by_product: dict[int, dict[str, Any]] = {}
    for row in moves:
        by_product.setdefault(many2one_id(row["product_id"]) or 0, row)
    tracked_moves = [
        by_product[p.id]["id"]
        for p in products.values()
        if p.tracking != "none" and p.id in by_product
    ]
    lines: list[dict[str, Any]] = []
    if tracked_moves:
        lines = await client.search_read(
            "stock.move.line",
            [["move_id", "in", tracked_moves]],
            ["move_id", "lot_id", "quantity", "picked"],
            order="id",
        )
    before: dict[str, list[float]] = intent.get("written", {})
    per_product: dict[str, dict[str, float]] = {}
    for k, target in targets.items():
        code, lot = split_line_key(k)
        per_product.setdefault(code, {})[lot or ""] = target
    commands: list[list[Any]] = []
    for code, lots in sorted(per_product.items()):
        product = products[code]
        move: dict[str, Any] | None = by_product.get(product.id)
        if product.tracking == "none":
            commands.append(_untracked(mo, code, product, move, lots[""], ledger, before))
            continue
        lot_ids = await odoo.lookup.lots(product, set(lots), create=False)
        line_commands: list[list[Any]] = []
        move_lines = [ln for ln in lines if move and many2one_id(ln["move_id"]) == move["id"]]
        wanted = set(lot_ids.values())
        for lot, target in sorted(lots.items()):
            k = line_key(code, lot)
            line = next(
                (ln for ln in move_lines if many2one_id(ln["lot_id"]) == lot_ids[lot]), None
            )
            current = float(line["quantity"]) if line and line["picked"] else 0.0
            check_drift(mo, f"{code} lot {lot}", current, ledger.written.get(k), before.get(k, []))
            values = {"quantity": round(target, 6), "picked": True}
            if line is None:
                line_commands.append(
                    [0, 0, {"product_id": product.id, "lot_id": lot_ids[lot], **values}]
                )
            else:
                line_commands.append([1, line["id"], values])
        for line in move_lines:
            if not line["picked"] and many2one_id(line["lot_id"]) not in wanted:
                # A reservation on a lot the floor did not use: drop it ([2, id] releases
                # the reserved quantity; [3, id] would leak it).
                line_commands.append([2, line["id"]])
        if move is None:
            total = sum(lots.values())
            commands.append(
                [
                    0,
                    0,
                    {
                        "product_id": product.id,
                        "product_uom_qty": round(total, 6),
                        "move_line_ids": line_commands,
                    },
                ]
            )
        else:
            commands.append([1, move["id"], {"move_line_ids": line_commands}])
    return commands


def _untracked(
    mo: dict[str, Any],
    code: str,
    product: Product,
    move: dict[str, Any] | None,
    target: float,
    ledger: OrderLedger,
    before: dict[str, list[float]],
) -> list[Any]:
    """The command setting an untracked component's move to ``target``."""
    if move is None:
        values = {
            "product_id": product.id,
            "product_uom_qty": round(target, 6),
            "quantity": round(target, 6),
            "picked": True,
        }
        return [0, 0, values]
    k = line_key(code, None)
    current = float(move["quantity"]) if move["picked"] else 0.0
    check_drift(mo, code, current, ledger.written.get(k), before.get(k, []))
    return [1, move["id"], {"quantity": round(target, 6), "picked": True}]


def check_drift(
    mo: dict[str, Any], what: str, current: float, written: float | None, about: list[float]
) -> None:
    """Refuse when Odoo's consumed quantity is neither the relay's last write nor one it was
    about to write."""
    if written is None:
        return
    if same(current, written) or any(same(current, v) for v in about):
        return
    raise Drift(
        f"manufacturing order {mo['name']}: consumed {what} in Odoo is {current:g}, the relay "
        f"last wrote {written:g}; it was changed outside the relay. Set it back and replay"
    )
