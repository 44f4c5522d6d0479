"""Stock transfers and receipts: one done ``stock.picking`` per event, exactly once.

The picking's ``name`` is made from the event id. Odoo keeps a picking ``name`` unique per
company, so it is the duplicate guard: a repeat (after a crash, or a replay) first looks the
name up and only validates a picking that is not done yet. Each event takes two calls when all
goes well (measured on 18 and 19): ``create`` with the move's quantity already ``picked``, then
``button_validate`` with the context that closes the picking without a backorder
(``skip_backorder`` alone would still leave one).

Events of one product share a posting key (``stock:<product>``), so an unknown product,
location or lot parks the movements of that product only.

The narrow interface: :func:`key_of` (the posting key of an event), :func:`fold` (the events
applied together), :meth:`TransferEffect.apply` (through the Odoo client) and the ledger record
:func:`record` adds to a key's ledger.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.errors import OdooValidationError
from cloud_relay.posting.lookup import Lookup, Product, Refused
from cloud_relay.posting.units import Units

TRANSFER = "stock.transferred"
RECEIPT = "stock.received"
STOCK_TYPES = frozenset({TRANSFER, RECEIPT})
KEY_PREFIX = "stock:"
NAME_PREFIX = "RELAY/"
#: Close the picking at the picked quantity without a backorder (Part C.4.4).
_NO_BACKORDER = "picking_ids_not_to_backorder"
_ANY_ACTIVE = ["active", "in", [True, False]]


class StockEvent(Protocol):
    """What this module needs of a posting: its event id, type and data."""

    @property
    def event_id(self) -> str: ...

    @property
    def type(self) -> str: ...

    @property
    def data(self) -> dict[str, Any]: ...


def key_of(event_type: str, data: Mapping[str, Any]) -> str | None:
    """The posting key of a transfer or receipt (None for other types)."""
    if event_type in STOCK_TYPES:
        return f"{KEY_PREFIX}{data['product']}"
    return None


def fold(events: Sequence[StockEvent]) -> list[StockEvent]:
    """The events applied in one step: one, since each is a picking of its own."""
    return list(events[:1])


def picking_name(event_id: str) -> str:
    """The picking ``name`` bound to an event."""
    return f"{NAME_PREFIX}{event_id}"


def record(
    ledger: Mapping[str, Any], event: StockEvent, effect: Mapping[str, Any], at: str
) -> dict[str, Any]:
    """The key's ledger after ``event``: the net quantity moved per location id and lot, in
    the product's unit, the locations' names, when the relay first moved the product (``at``,
    ISO 8601 UTC) and how many events were applied."""
    moved = dict(ledger.get("moved", {}))
    names = dict(ledger.get("names", {}))
    qty = float(effect["qty"])
    lot = event.data.get("lot") or ""
    for place, name, sign in (
        (effect.get("from_id"), effect.get("from"), -1.0),
        (effect["to_id"], effect["to"], 1.0),
    ):
        if place:
            slot = f"{place}\x1f{lot}"
            moved[slot] = round(moved.get(slot, 0.0) + sign * qty, 6)
            names[str(place)] = name
    return {
        **ledger,
        "product_id": effect["product_id"],
        "moved": moved,
        "names": names,
        "since": ledger.get("since") or at,
        "first_picking": ledger.get("first_picking") or effect.get("picking_id"),
        "applied": int(ledger.get("applied", 0)) + 1,
    }


class TransferEffect:
    """Applies transfers and receipts through one Odoo client."""

    def __init__(self, client: OdooClient, lookup: Lookup, units: Units) -> None:
        self._client = client
        self._lookup = lookup
        self._units = units
        self._locations: dict[str, int] = {}
        self._types: dict[str, int] = {}
        self._vendors: int | None = None

    async def apply(self, event: StockEvent) -> dict[str, Any]:
        """Make the event's picking done in Odoo (or find it done); answer the effect."""
        name = picking_name(event.event_id)
        data = event.data
        product = await self._lookup.product(str(data["product"]))
        qty = await self._units.in_product_unit(float(data["qty"]), data.get("uom"), product)
        receipt = event.type == RECEIPT
        dest = str(data["location"] if receipt else data["to_location"])
        source_name = None if receipt else str(data["from_location"])
        effect: dict[str, Any] = {
            "picking": name,
            "product_id": product.id,
            "qty": qty,
            "uom": product.uom_name,
            "from": source_name,
            "to": dest,
        }
        source = (
            await self._vendor_location()
            if source_name is None
            else await self._location(source_name)
        )
        effect.update({"from_id": None if receipt else source, "to_id": await self._location(dest)})
        found = await self._find(name)
        if found is None:
            values = await self._picking_values(
                event, name, product, qty, source, source_name, dest
            )
            try:
                picking_id = await self._client.create("stock.picking", values)
            except OdooValidationError:
                found = await self._find(name)  # created meanwhile: the name is taken
                if found is None:
                    raise
                picking_id = int(found["id"])
        else:
            picking_id = int(found["id"])
            if found["state"] == "done":
                return {**effect, "picking_id": picking_id, "repeat": True}
            if found["state"] == "cancel":
                raise Refused(f"transfer {name} was cancelled in Odoo: replay or discard it")
        result = await self._client.execute(
            "stock.picking",
            "button_validate",
            [picking_id],
            context={"skip_backorder": True, _NO_BACKORDER: [picking_id]},
        )
        if isinstance(result, dict) and result.get("res_model"):
            raise Refused(
                f"transfer {name}: Odoo asks for {result.get('name') or result['res_model']} "
                "to validate it; validate it in Odoo"
            )
        return {**effect, "picking_id": picking_id}

    async def _find(self, name: str) -> dict[str, Any] | None:
        rows = await self._client.search_read(
            "stock.picking", [["name", "=", name]], ["state"], limit=1
        )
        return rows[0] if rows else None

    async def _picking_values(
        self,
        event: StockEvent,
        name: str,
        product: Product,
        qty: float,
        source: int,
        source_name: str | None,
        dest_name: str,
    ) -> dict[str, Any]:
        data = event.data
        dest = await self._location(dest_name)
        if source == dest:
            raise Refused(f"{event.type}: from and to are the same location {dest_name!r}")
        picking_type = await self._picking_type(
            data.get("operation_type"), "incoming" if source_name is None else "internal"
        )
        lot_id = await self._lot(event, product, qty, create=source_name is None)
        line: dict[str, Any] = {
            "product_id": product.id,
            "quantity": qty,
            "location_id": source,
            "location_dest_id": dest,
            "picked": True,
        }
        move: dict[str, Any] = {
            "product_id": product.id,
            "product_uom_qty": qty,
            "product_uom": product.uom_id,
            "location_id": source,
            "location_dest_id": dest,
            "picked": True,
        }
        if lot_id is None:
            move["quantity"] = qty
        else:
            move["move_line_ids"] = [[0, 0, {**line, "lot_id": lot_id}]]
        if self._client.version <= 18:
            move["name"] = str(data.get("reason") or data.get("reference") or name)
        values: dict[str, Any] = {
            "name": name,
            "picking_type_id": picking_type,
            "location_id": source,
            "location_dest_id": dest,
            "origin": str(data.get("reference") or event.event_id),
            "move_ids": [[0, 0, move]],
        }
        if data.get("reason"):
            values["note"] = str(data["reason"])
        return values

    async def _lot(self, event: StockEvent, product: Product, qty: float, *, create: bool) -> Any:
        lot = event.data.get("lot")
        if product.tracking == "none":
            return None
        if not lot:
            raise Refused(
                f"product {product.code!r} is tracked by {product.tracking} in Odoo: "
                f"{event.type} needs a lot"
            )
        if product.tracking == "serial" and abs(qty - 1.0) > 1e-9:
            raise Refused(
                f"product {product.code!r} is tracked by serial number in Odoo: "
                f"{event.type} of serial {lot!r} must move 1, not {qty:g}"
            )
        return (await self._lookup.lots(product, {str(lot)}, create=create))[str(lot)]

    async def _location(self, name: str) -> int:
        """A location by full name (``WH/Stock/Shelf 1``) or barcode."""
        if name not in self._locations:
            rows = await self._client.search_read(
                "stock.location",
                ["|", ["complete_name", "=", name], ["barcode", "=", name]],
                ["complete_name", "usage"],
                limit=2,
            )
            if len(rows) != 1:
                what = "no" if not rows else "more than one"
                raise Refused(
                    f"unknown location: {what} location in Odoo has the full name or "
                    f"barcode {name!r}"
                )
            if rows[0]["usage"] == "view":
                raise Refused(f"location {name!r} is a view in Odoo: stock cannot be put there")
            self._locations[name] = int(rows[0]["id"])
        return self._locations[name]

    async def _vendor_location(self) -> int:
        if self._vendors is None:
            rows = await self._client.search_read(
                "stock.location", [["usage", "=", "supplier"]], ["id"], limit=1, order="id"
            )
            if not rows:
                raise Refused("Odoo has no vendor location to receive from")
            self._vendors = int(rows[0]["id"])
        return self._vendors

    async def _picking_type(self, name: Any, code: str) -> int:
        """The operation type named in the event (name or prefix), else the first of ``code``;
        internal types are archived when multi-locations is off and still work."""
        wanted = str(name) if name else f"<{code}>"
        if wanted not in self._types:
            domain: list[Any] = (
                ["|", ["name", "=", wanted], ["sequence_code", "=", wanted], _ANY_ACTIVE]
                if name
                else [["code", "=", code], _ANY_ACTIVE]
            )
            rows = await self._client.search_read(
                "stock.picking.type", domain, ["id"], limit=1, order="id"
            )
            if not rows:
                raise Refused(f"unknown operation type: Odoo has no operation type {wanted!r}")
            self._types[wanted] = int(rows[0]["id"])
        return self._types[wanted]
