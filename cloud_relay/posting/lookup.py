"""Odoo records the writer names by plant-floor identifiers: products by ``default_code``,
lots by name, locations by full name, work centres by name or code. Found ids are cached for
the life of the process (they do not change under a running order); misses are not, so a
product created in Odoo later is found on the next try.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud_relay.errors import RejectedError
from cloud_relay.odoo.client import OdooClient


class Refused(RejectedError):
    """Odoo cannot take this event as things stand: the order is parked with this reason."""


@dataclass(frozen=True, slots=True)
class Product:
    """A product variant as the writer needs it."""

    id: int
    code: str
    name: str
    tracking: str
    uom_id: int
    uom_name: str


def many2one_id(value: Any) -> int | None:
    """The id of a many2one value as ``read`` answers it (``[id, name]`` or ``false``)."""
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def many2one_name(value: Any) -> str | None:
    """The display name of a many2one value, or None."""
    if isinstance(value, list | tuple) and len(value) > 1:
        return str(value[1])
    return None


class Lookup:
    """Cached name-to-id lookups against one Odoo."""

    def __init__(self, client: OdooClient) -> None:
        self._client = client
        self._products: dict[str, Product] = {}
        self._locations: dict[str, int] = {}
        self._stock_location: int | None = None
        self._productive_loss: int | None = None

    async def products(self, codes: set[str]) -> dict[str, Product]:
        """The products with these internal references; Refused naming any Odoo lacks."""
        missing = sorted(codes - self._products.keys())
        if missing:
            rows = await self._client.search_read(
                "product.product",
                [["default_code", "in", missing]],
                ["default_code", "display_name", "tracking", "uom_id"],
            )
            by_code: dict[str, list[dict[str, Any]]] = {}
            for row in rows:
                by_code.setdefault(str(row["default_code"]), []).append(row)
            for code, found in by_code.items():
                if len(found) > 1:
                    ids = ", ".join(str(r["id"]) for r in found)
                    raise Refused(
                        f"product {code!r}: {len(found)} products in Odoo have this internal "
                        f"reference (ids {ids}); make it unique"
                    )
                row = found[0]
                self._products[code] = Product(
                    id=int(row["id"]),
                    code=code,
                    name=str(row.get("display_name") or code),
                    tracking=str(row.get("tracking") or "none"),
                    uom_id=many2one_id(row.get("uom_id")) or 0,
                    uom_name=many2one_name(row.get("uom_id")) or "",
                )
            unknown = [code for code in missing if code not in self._products]
            if unknown:
                raise Refused(
                    "unknown product: no product in Odoo has the internal reference "
                    + ", ".join(repr(c) for c in unknown)
                )
        return {code: self._products[code] for code in codes}

    async def product(self, code: str) -> Product:
        """One product by internal reference."""
        return (await self.products({code}))[code]

    async def lots(self, product: Product, names: set[str], *, create: bool) -> dict[str, int]:
        """Lot ids of ``product`` by name; missing lots are created when ``create`` (a lot name
        is unique per product, so a create repeated after a crash finds the first one)."""
        if not names:
            return {}
        rows = await self._client.search_read(
            "stock.lot",
            [["product_id", "=", product.id], ["name", "in", sorted(names)]],
            ["name"],
        )
        found = {str(r["name"]): int(r["id"]) for r in rows}
        for name in sorted(names - found.keys()):
            if not create:
                raise Refused(f"unknown lot: product {product.code!r} has no lot {name!r} in Odoo")
            found[name] = await self._client.create(
                "stock.lot", {"name": name, "product_id": product.id}
            )
        return found

    async def location(self, name: str) -> int:
        """An internal location by full name (``WH/Stock``) or short name."""
        if name not in self._locations:
            rows = await self._client.search_read(
                "stock.location",
                [["complete_name", "=", name], ["usage", "=", "internal"]],
                ["id"],
                limit=2,
            )
            if not rows:
                rows = await self._client.search_read(
                    "stock.location",
                    [["name", "=", name], ["usage", "=", "internal"]],
                    ["id"],
                    limit=2,
                )
            if len(rows) != 1:
                what = "no" if not rows else "more than one"
                raise Refused(
                    f"unknown location: {what} internal location in Odoo is named {name!r}"
                )
            self._locations[name] = int(rows[0]["id"])
        return self._locations[name]

    async def stock_location(self) -> int:
        """The main warehouse's stock location (for scraps tied to no order)."""
        if self._stock_location is None:
            rows = await self._client.search_read(
                "stock.warehouse", [], ["lot_stock_id"], limit=1, order="id"
            )
            if not rows or many2one_id(rows[0].get("lot_stock_id")) is None:
                raise Refused("no warehouse in Odoo: a scrap tied to no order needs one")
            self._stock_location = many2one_id(rows[0]["lot_stock_id"])
        assert self._stock_location is not None
        return self._stock_location

    async def productive_loss(self) -> int:
        """The "productive time" reason Odoo gives time logs of work being done."""
        if self._productive_loss is None:
            rows = await self._client.search_read(
                "mrp.workcenter.productivity.loss",
                [["loss_type", "=", "productive"]],
                ["id"],
                limit=1,
                order="sequence, id",
            )
            if not rows:
                raise Refused(
                    "Odoo has no productivity loss of type 'productive' to log work time with"
                )
            self._productive_loss = int(rows[0]["id"])
        return self._productive_loss
