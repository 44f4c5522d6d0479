"""The manufacturing order behind an ``mo:`` key, as Odoo has it now: shared by the effects
on an order (quantities, operations, completion)."""

from __future__ import annotations

from typing import Any

from cloud_relay.odoo.errors import OdooRecordNotFound
from cloud_relay.posting.effects.base import Odoo
from cloud_relay.posting.keys import mo_key as mo_key
from cloud_relay.posting.keys import order_name as order_name
from cloud_relay.posting.ledger import OrderLedger
from cloud_relay.posting.lookup import Refused, many2one_id

MO_FIELDS = (
    "name",
    "state",
    "product_id",
    "product_qty",
    "product_tracking",
    "qty_producing",
    "location_src_id",
    "product_uom_id",
)


async def read_order(odoo: Odoo, key: str, ledger: OrderLedger) -> dict[str, Any]:
    """The MO of ``key`` as Odoo has it now (bound in the ledger on first sight)."""
    client = odoo.client
    fields = [*MO_FIELDS, odoo.lot_field]
    if ledger.mo_id is not None:
        try:
            return (await client.read("mrp.production", [ledger.mo_id], fields))[0]
        except OdooRecordNotFound:
            raise Refused(
                f"manufacturing order {ledger.mo_name!r} (id {ledger.mo_id}) was deleted in Odoo"
            ) from None
    name = order_name(key) or key
    rows = await client.search_read("mrp.production", [["name", "=", name]], fields, limit=1)
    if not rows:
        # Odoo renames an order split by a backorder NAME-001, NAME-002...
        rows = await client.search_read(
            "mrp.production",
            [["name", "=like", f"{name}-%"], ["state", "not in", ["done", "cancel"]]],
            fields,
            limit=1,
            order="id",
        )
    if not rows:
        raise Refused(f"unknown order: no manufacturing order named {name!r} in Odoo (yet)")
    ledger.mo_id = int(rows[0]["id"])
    ledger.mo_name = str(rows[0]["name"])
    return rows[0]


def check_open(mo: dict[str, Any], ledger: OrderLedger) -> None:
    """Refuse an MO that is a draft, cancelled or already done."""
    name = mo["name"]
    state = mo["state"]
    if state == "draft":
        raise Refused(f"manufacturing order {name} is a draft in Odoo: confirm it")
    if state == "cancel":
        raise Refused(f"manufacturing order {name} was cancelled in Odoo")
    if state == "done":
        if ledger.done:
            raise Refused(
                f"manufacturing order {name} was already completed by an earlier "
                "order.completed; this event came after it"
            )
        raise Refused(f"manufacturing order {name} was closed in Odoo by hand (state done)")


def lot_of(odoo: Odoo, mo: dict[str, Any]) -> int | None:
    """The finished lot the MO is producing."""
    value = mo.get(odoo.lot_field)
    if odoo.lot_field == "lot_producing_ids":
        return int(value[0]) if value else None
    return many2one_id(value)
