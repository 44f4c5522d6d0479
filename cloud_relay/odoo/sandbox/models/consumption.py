"""The consumption check of ``button_mark_done`` (Odoo's ``_get_consumption_issues``): for an MO
whose consumption is not ``flexible``, the picked quantities of its components are compared with
the BOM's, scaled to ``qty_producing``. Only picked quantities count.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.models import lookup
from cloud_relay.odoo.sandbox.models.product import round_to

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.production import Production

EPSILON = 1e-9


def consumption_issues(productions: Production, ids: list[int]) -> list[dict[str, Any]]:
    env = productions.env
    if env.context.get("skip_consumption"):
        return []
    boms = lookup.boms(env)
    bom_lines = lookup.bom_lines(env)
    moves = lookup.moves(env)
    products = lookup.products(env)
    uoms = lookup.uoms(env)
    issues = []
    for record_id in ids:
        row = productions.row(record_id)
        bom = row.get("bom_id")
        consumption = row.get("consumption")
        if consumption == "flexible" or not bom:
            continue
        line_ids = bom_lines.search_ids([["bom_id", "=", bom]])
        if not line_ids:
            continue
        ratio = float(row["product_qty"]) / float(boms.get(int(bom), "product_qty") or 1.0)
        share = float(productions.get(record_id, "qty_producing") or 0.0) / float(
            row["product_qty"]
        )
        expected: dict[int, float] = defaultdict(float)
        for line in line_ids:
            product = int(bom_lines.get(line, "product_id"))
            quantity = uoms.convert(
                float(bom_lines.get(line, "product_qty")) * ratio,
                bom_lines.get(line, "product_uom_id"),
                products.get(product, "uom_id"),
            )
            expected[product] += quantity * share
        done: dict[int, float] = defaultdict(float)
        for move_id in productions.raw_moves(record_id):
            move = moves.row(move_id)
            product = int(move["product_id"])
            quantity = _picked_quantity(productions, move_id) if move.get("picked") else 0.0
            if product not in expected and move.get("picked") and abs(quantity) > EPSILON:
                issues.append(_issue(productions, record_id, product, quantity, 0.0))
                continue
            done[product] += quantity
        for product, wanted in expected.items():
            rounding = float(uoms.get(int(products.get(product, "uom_id")), "rounding"))
            if (
                abs(round_to(wanted, rounding) - round_to(done.get(product, 0.0), rounding))
                > EPSILON
            ):
                issues.append(
                    _issue(productions, record_id, product, done.get(product, 0.0), wanted)
                )
    return issues


def _picked_quantity(productions: Production, move_id: int) -> float:
    lines = lookup.move_lines(productions.env)
    return sum(
        lines.product_quantity(lines.row(line))
        for line in lookup.moves(productions.env).line_ids(move_id)
        if lines.get(line, "picked")
    )


def _issue(
    productions: Production, record_id: int, product: int, consumed: float, expected: float
) -> dict[str, Any]:
    return {
        "mrp_production_id": record_id,
        "product_id": product,
        "consumption": productions.get(record_id, "consumption"),
        "product_uom_id": lookup.products(productions.env).get(product, "uom_id"),
        "product_consumed_qty_uom": round(consumed, 6),
        "product_expected_qty_uom": round(expected, 6),
    }
