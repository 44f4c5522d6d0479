"""``inventory.counted``: an applied inventory count of a product at a location. Counts are
absolute, so a run of them folds to the last one."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from cloud_relay.posting.effects.base import Effects, Item, Odoo, StepState
from cloud_relay.posting.lookup import Refused
from wire.events import InventoryCounted


class InventoryCount:
    """``inventory.counted``, one key per location and product."""

    types: ClassVar[frozenset[str]] = frozenset({"inventory.counted"})

    def key(self, event_type: str, data: BaseModel) -> str | None:
        assert isinstance(data, InventoryCounted)
        return f"inventory:{data.location}:{data.product}"

    def fold(self, items: Sequence[Item]) -> int:
        return len(items)

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        """An applied count of the last event of the step, recorded for each of them."""
        client = odoo.client
        last = step[-1]
        count = last.model(InventoryCounted)
        product = await odoo.lookup.product(count.product)
        location = await odoo.lookup.location(count.location)
        marker = f"relay {last.event_id}"
        effect = {"counted": float(count.qty), "marker": marker}
        effects = {item.posting.pid: effect for item in step}
        label = "inventory_name" if client.version >= 19 else "name"
        if state.intent.get("inventory") == marker:
            done = await client.search(
                "stock.move",
                [["is_inventory", "=", True], [label, "=like", f"{marker}%"]],
                limit=1,
            )
            if done:
                return effects
        values: dict[str, Any] = {
            "product_id": product.id,
            "location_id": location,
            "inventory_quantity": float(count.qty),
        }
        if count.lot and product.tracking != "none":
            values["lot_id"] = (await odoo.lookup.lots(product, {count.lot}, create=True))[
                count.lot
            ]
        await state.save_intent({"inventory": marker})
        quant = await client.create("stock.quant", values, context={"inventory_mode": True})
        result = await client.execute(
            "stock.quant",
            "action_apply_inventory",
            [quant],
            context={"inventory_mode": True, "inventory_name": marker},
        )
        if isinstance(result, dict) and result.get("res_model"):
            raise Refused(
                f"inventory count of {product.code} at {count.location}: Odoo asks "
                f"for {result.get('name') or result['res_model']}; apply it in Odoo"
            )
        return effects
