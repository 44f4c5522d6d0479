"""On hand per product, location and lot the plant reports on, and negative stock.

Each ``stock:<product>`` ledger names the locations (and lots) the relay moved the product
through and when it first did. Odoo's on-hand there is the relay's figure plus whatever was done
outside it since then; so the done move lines there since that time are read in one batch and
sorted: pickings named ``RELAY/...``, the relay's own inventory counts and manufacturing moves
are the relay's; an inventory adjustment of someone else's is an edit by hand; anything else is
a move made in Odoo outside the relay. Each place with a non-zero outside total is a difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud_relay.posting.ledger import same
from cloud_relay.posting.lookup import many2one_id, many2one_name
from cloud_relay.posting.store import OrderState
from cloud_relay.posting.transfer import KEY_PREFIX, NAME_PREFIX
from cloud_relay.reconcile.model import Difference
from cloud_relay.reconcile.reads import CountingReader

_RELAY_COUNT = "relay "


@dataclass
class _Slot:
    product: int
    code: str
    location: int
    location_name: str
    lot: str
    since: str
    first_picking: int
    outside: float = 0.0
    hand: list[str] = field(default_factory=list)
    moves: list[str] = field(default_factory=list)


def _slots(states: Sequence[OrderState]) -> dict[tuple[int, int, str], _Slot]:
    slots: dict[tuple[int, int, str], _Slot] = {}
    for state in states:
        ledger = state.ledger
        if not state.order_key.startswith(KEY_PREFIX) or "product_id" not in ledger:
            continue
        product = int(ledger["product_id"])
        for slot in ledger.get("moved", {}):
            location, _, lot = slot.partition("\x1f")
            name = str(ledger.get("names", {}).get(location, location))
            code = state.order_key.removeprefix(KEY_PREFIX)
            slots[(product, int(location), lot)] = _Slot(
                product,
                code,
                int(location),
                name,
                lot,
                str(ledger.get("since") or ""),
                int(ledger.get("first_picking") or 0),
            )
    return slots


def _odoo_time(iso: str) -> str:
    """``2025-03-01 06:00:00`` from an ISO 8601 UTC time (Odoo's datetime format)."""
    return iso[:19].replace("T", " ")


async def check_on_hand(
    reader: CountingReader, states: Sequence[OrderState]
) -> tuple[list[Difference], int]:
    """Differences per product, location and lot the relay moved stock through."""
    slots = _slots(states)
    if not slots:
        return [], 0
    products = {s.product for s in slots.values()}
    locations = {s.location for s in slots.values()}
    since = min(s.since for s in slots.values())
    quants = await reader.where_in(
        "stock.quant",
        "product_id",
        products,
        ["product_id", "location_id", "lot_id", "quantity", "reserved_quantity"],
        [["location_id", "in", sorted(locations)]],
    )
    lines = await reader.where_in(
        "stock.move.line",
        "product_id",
        products,
        ["move_id", "product_id", "location_id", "location_dest_id", "lot_id", "quantity", "date"],
        [
            ["state", "=", "done"],
            ["date", ">=", _odoo_time(since)],
            "|",
            ["location_id", "in", sorted(locations)],
            ["location_dest_id", "in", sorted(locations)],
        ],
    )
    # Odoo's times have whole seconds: the relay's first move of a product bounds what is new.
    firsts = await reader.where_in(
        "stock.move", "picking_id", {s.first_picking for s in slots.values()}, ["product_id"]
    )
    first_move = {many2one_id(m["product_id"]) or 0: int(m["id"]) for m in firsts}
    lines = [
        r
        for r in lines
        if (many2one_id(r["move_id"]) or 0) >= first_move.get(many2one_id(r["product_id"]) or 0, 0)
    ]
    move_ids = {many2one_id(r["move_id"]) for r in lines} - {None}
    moves = {
        int(m["id"]): m
        for m in await reader.where_in(
            "stock.move",
            "id",
            move_ids,
            [
                "picking_id",
                "is_inventory",
                "reference",
                "raw_material_production_id",
                "production_id",
                "scrap_id",
            ],
        )
    }
    for line in lines:
        move = moves.get(many2one_id(line["move_id"]) or 0, {})
        picking = many2one_name(move.get("picking_id")) or ""
        reference = str(picking or move.get("reference") or f"move {move.get('id')}")
        if picking.startswith(NAME_PREFIX) or any(
            move.get(f) for f in ("raw_material_production_id", "production_id", "scrap_id")
        ):
            continue
        if move.get("is_inventory") and reference.startswith(_RELAY_COUNT):
            continue
        product = many2one_id(line["product_id"]) or 0
        lot = many2one_name(line.get("lot_id")) or ""
        for location_field, sign in (("location_id", -1.0), ("location_dest_id", 1.0)):
            location = many2one_id(line[location_field]) or 0
            for key in {(product, location, lot), (product, location, "")}:
                slot = slots.get(key)
                if slot is None or str(line["date"]) < _odoo_time(slot.since):
                    continue
                slot.outside += sign * float(line.get("quantity") or 0.0)
                (slot.hand if move.get("is_inventory") else slot.moves).append(reference)
    on_hand: dict[tuple[int, int, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for quant in quants:
        product = many2one_id(quant["product_id"]) or 0
        location = many2one_id(quant["location_id"]) or 0
        lot = many2one_name(quant.get("lot_id")) or ""
        for key in {(product, location, lot), (product, location, "")}:
            on_hand[key][0] += float(quant.get("quantity") or 0.0)
            on_hand[key][1] += float(quant.get("reserved_quantity") or 0.0)
    differences = []
    for key, slot in sorted(slots.items()):
        if same(slot.outside, 0.0):
            continue
        quantity, reserved = on_hand[key]
        subject = f"{slot.code} at {slot.location_name}" + (f" lot {slot.lot}" if slot.lot else "")
        refs = ", ".join(dict.fromkeys(slot.moves + slot.hand))
        cause = (
            f"an inventory adjustment by hand in Odoo ({refs})"
            if slot.hand and not slot.moves
            else f"a move made in Odoo outside the relay ({refs})"
        )
        differences.append(
            Difference(
                "on_hand",
                subject,
                round(quantity - slot.outside, 6),
                round(quantity, 6),
                cause,
                "report the move from the plant (or count the place), or reverse it in Odoo",
                {
                    "reserved": round(reserved, 6),
                    "available": round(quantity - reserved, 6),
                    "outside": round(slot.outside, 6),
                },
            )
        )
    return differences, len(slots)


async def check_negative(
    reader: CountingReader, component_codes: set[str]
) -> tuple[list[Difference], int]:
    """Negative on-hand quants in internal locations, as business exceptions; a component of an
    order the relay posts to is "consumed without stock"."""
    quants = await reader.search_read(
        "stock.quant",
        [["quantity", "<", 0], ["location_id.usage", "=", "internal"]],
        ["product_id", "location_id", "lot_id", "quantity", "reserved_quantity"],
    )
    if not quants:
        return [], 0
    products = await reader.where_in(
        "product.product",
        "id",
        {many2one_id(q["product_id"]) for q in quants} - {None},
        ["default_code"],
    )
    codes = {int(p["id"]): str(p.get("default_code") or p["id"]) for p in products}
    differences = []
    for quant in quants:
        code = codes.get(many2one_id(quant["product_id"]) or 0, "")
        place = many2one_name(quant["location_id"]) or ""
        lot = many2one_name(quant.get("lot_id"))
        consumed = code in component_codes
        detail: dict[str, Any] = {"reserved": float(quant.get("reserved_quantity") or 0.0)}
        differences.append(
            Difference(
                "consumed_without_stock" if consumed else "negative_on_hand",
                f"{code} at {place}" + (f" lot {lot}" if lot else ""),
                None,
                float(quant["quantity"]),
                "components were consumed that Odoo had no stock of"
                if consumed
                else "more stock left the place than Odoo knew it held",
                "receive or count the missing stock (a receipt or a count from the plant)",
                detail,
            )
        )
    return differences, len(quants)
