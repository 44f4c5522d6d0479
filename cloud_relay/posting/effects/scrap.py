"""Scrap tied to no order (``scrap.reported`` without ``order``), and the scrap records every
scrap effect creates: bound to their events by external id, validated if still drafts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from cloud_relay.posting.effects.base import (
    UTC_CONTEXT,
    Effects,
    Item,
    Odoo,
    SaveIntent,
    StepState,
    event_xmlid,
    load_failed,
)
from cloud_relay.posting.lookup import many2one_id
from wire.events import ScrapReported

_LOAD_FIELDS = [
    "id",
    "product_id/.id",
    "scrap_qty",
    "location_id/.id",
    "lot_id/.id",
    "production_id/.id",
    "origin",
]


async def post_scraps(
    odoo: Odoo,
    step: Sequence[Item],
    mo: dict[str, Any] | None,
    intent: dict[str, Any],
    save_intent: SaveIntent | None,
) -> Effects:
    """Scraps of ``step`` (on ``mo``, else from stock), each bound to its event, then done."""
    client = odoo.client
    scraps = [item.model(ScrapReported) for item in step]
    products = await odoo.lookup.products({s.product for s in scraps})
    location = many2one_id(mo["location_src_id"]) if mo else await odoo.lookup.stock_location()
    rows: list[list[Any]] = []
    for item, scrap in zip(step, scraps, strict=True):
        product = products[scrap.product]
        qty = await odoo.in_product_unit(scrap.qty, scrap.uom, product)
        lot_id: Any = ""
        if scrap.lot and product.tracking != "none":
            lot_id = (await odoo.lookup.lots(product, {scrap.lot}, create=False))[scrap.lot]
        rows.append(
            [
                event_xmlid(item.event_id),
                product.id,
                qty,
                location,
                lot_id,
                mo["id"] if mo else "",
                (scrap.reason or "")[:1024],
            ]
        )
    if save_intent is not None:
        await save_intent({"scraps": [i.event_id for i in step]})
    result = await client.execute("stock.scrap", "load", _LOAD_FIELDS, rows, context=UTC_CONTEXT)
    messages = (result or {}).get("messages", [])
    ids = (result or {}).get("ids")
    if messages or not ids or len(ids) != len(step):
        raise load_failed("scrap", result)
    todo = list(ids)
    if intent.get("scraps"):
        # A repeat after a crash: only validate the scraps still in draft.
        states = await client.read("stock.scrap", ids, ["state"])
        todo = [int(r["id"]) for r in states if r["state"] != "done"]
    for scrap_id in todo:
        # One call per scrap: on several at once Odoo 18 (mrp's _compute_scrap_qty returns
        # after the first record) resets the quantity shown on all but the first to 1.
        await client.execute("stock.scrap", "do_scrap", [scrap_id])
    return {
        item.posting.pid: {"scrap_id": int(scrap_id)}
        for item, scrap_id in zip(step, ids, strict=True)
    }


class LooseScrap:
    """``scrap.reported`` on no order: a scrap from the stock location, per product."""

    types: ClassVar[frozenset[str]] = frozenset({"scrap.reported"})

    def key(self, event_type: str, data: BaseModel) -> str | None:
        assert isinstance(data, ScrapReported)
        return None if data.order else f"scrap:{data.product}"

    def fold(self, items: Sequence[Item]) -> int:
        return len(items)  # scraps are records of their own: any number go in one load

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        return await post_scraps(odoo, step, None, state.intent, state.save_intent)
