"""Manufacturing orders: what the relay applied (its ledger) against what Odoo has now, and
events that never reached Odoo (dead letters)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from cloud_relay.posting.ledger import OrderLedger, same, split_line_key
from cloud_relay.posting.lookup import many2one_id
from cloud_relay.posting.store import DeadLetter, OrderState
from cloud_relay.reconcile.model import Difference
from cloud_relay.reconcile.reads import CountingReader

_HAND = "changed in Odoo outside the relay (an edit by hand)"
_SET_BACK = "check the order in Odoo: set it back to the relay's figure, or report the change"


def _cause(state: OrderState) -> str:
    if state.parked:
        return f"the order is parked: {state.park_reason}"
    return _HAND


async def check_orders(
    reader: CountingReader, states: Sequence[OrderState]
) -> tuple[list[Difference], int]:
    """Good, scrap and consumed quantities per open MO the relay posts to."""
    ledgers = {
        s.order_key: (s, OrderLedger.from_json(s.ledger))
        for s in states
        if s.order_key.startswith("mo:")
    }
    by_id = {ld.mo_id: (s, ld) for s, ld in ledgers.values() if ld.mo_id is not None}
    if not by_id:
        return [], 0
    mos = await reader.where_in(
        "mrp.production", "id", by_id, ["name", "state", "qty_producing", "qty_produced"]
    )
    open_ids = [int(m["id"]) for m in mos if m["state"] not in ("done", "cancel")]
    moves = await reader.where_in(
        "stock.move",
        "raw_material_production_id",
        open_ids,
        ["product_id", "quantity", "raw_material_production_id", "state"],
    )
    scraps = await reader.where_in(
        "stock.scrap", "production_id", open_ids, ["production_id", "scrap_qty", "state"]
    )
    product_ids = {many2one_id(m["product_id"]) for m in moves} - {None}
    products = await reader.where_in("product.product", "id", product_ids, ["default_code"])
    codes = {int(p["id"]): str(p.get("default_code") or p["id"]) for p in products}
    consumed: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for move in moves:
        if move["state"] == "cancel":
            continue
        mo_id = many2one_id(move["raw_material_production_id"]) or 0
        code = codes.get(many2one_id(move["product_id"]) or 0, "")
        consumed[mo_id][code] += float(move.get("quantity") or 0.0)
    scrapped: dict[int, float] = defaultdict(float)
    for scrap in scraps:
        if scrap["state"] == "done":
            scrapped[many2one_id(scrap["production_id"]) or 0] += float(scrap["scrap_qty"] or 0)
    differences: list[Difference] = []
    for mo in mos:
        if mo["state"] in ("done", "cancel"):
            continue
        state, ledger = by_id[int(mo["id"])]
        name = str(mo["name"])
        written = ledger.producing_written
        if written is not None and not same(written, float(mo["qty_producing"] or 0.0)):
            differences.append(
                Difference(
                    "mo_good",
                    name,
                    written,
                    float(mo["qty_producing"] or 0.0),
                    _cause(state),
                    _SET_BACK,
                )
            )
        totals: dict[str, float] = defaultdict(float)
        for key, value in ledger.written.items():
            totals[split_line_key(key)[0]] += value
        for code, value in sorted(totals.items()):
            odoo = round(consumed[int(mo["id"])].get(code, 0.0), 6)
            if not same(round(value, 6), odoo):
                differences.append(
                    Difference(
                        "mo_consumed",
                        f"{name} {code}",
                        round(value, 6),
                        odoo,
                        _cause(state),
                        _SET_BACK,
                    )
                )
        if ledger.scrapped and not same(ledger.scrapped, scrapped[int(mo["id"])]):
            differences.append(
                Difference(
                    "mo_scrap",
                    name,
                    ledger.scrapped,
                    scrapped[int(mo["id"])],
                    "a scrap was changed or cancelled in Odoo",
                    "check the order's scraps in Odoo",
                )
            )
    return differences, len(mos)


def check_dead_letters(
    dead: Sequence[DeadLetter], applied: dict[str, int], pending: dict[str, int]
) -> list[Difference]:
    """Per posting key: events the gateways sent against events that took effect in Odoo."""
    by_key: dict[str, list[DeadLetter]] = defaultdict(list)
    for letter in dead:
        by_key[letter.order_key].append(letter)
    differences = []
    for key, letters in sorted(by_key.items()):
        done = applied.get(key, 0)
        sent = done + len(letters) + pending.get(key, 0)
        first = letters[0]
        ids = [d.event_id for d in letters]
        differences.append(
            Difference(
                "events",
                key.removeprefix("mo:"),
                float(sent),
                float(done),
                f"dead-lettered event {first.event_id} ({first.type}): {first.error}"
                + (f" and {len(letters) - 1} more" if len(letters) > 1 else ""),
                "fix the cause, then replay or discard the dead letters on the admin page",
                {"dead_letters": [d.id for d in letters], "events": ids},
            )
        )
    return differences


def event_counts(states: Sequence[OrderState]) -> dict[str, Any]:
    """Pending postings per key (from the store's order states)."""
    return {s.order_key: s.pending for s in states}
