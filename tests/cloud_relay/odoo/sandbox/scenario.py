"""A small JSON-RPC client and scenario builders for the sandbox tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from cloud_relay.odoo.sandbox import SandboxHandle

ADMIN_UID = 2


class OdooFault(Exception):
    """An Odoo error answer: its class path and message."""

    def __init__(self, name: str, message: str, body: dict[str, Any]) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message
        self.body = body


@dataclass
class Rpc:
    """``execute_kw`` as one user, over HTTP."""

    http: httpx.AsyncClient
    database: str
    uid: int
    secret: str

    async def raw(self, service: str, method: str, *args: Any) -> dict[str, Any]:
        """The whole JSON-RPC answer body."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 1,
            "params": {"service": service, "method": method, "args": list(args)},
        }
        response = await self.http.post("/jsonrpc", json=payload)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def __call__(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``execute_kw(model, method, args, kwargs)``; raises OdooFault on an error answer."""
        body = await self.raw(
            "object",
            "execute_kw",
            self.database,
            self.uid,
            self.secret,
            model,
            method,
            list(args),
            kwargs,
        )
        if "error" in body:
            data = body["error"]["data"]
            raise OdooFault(data["name"], data["message"], body)
        return body.get("result")

    def as_user(self, uid: int, secret: str) -> Rpc:
        """The same client acting as another user."""
        return Rpc(self.http, self.database, uid, secret)


@dataclass
class Odoo:
    """A running sandbox with an admin client (``x``) and a connector client (``connector``)."""

    handle: SandboxHandle
    http: httpx.AsyncClient
    x: Rpc
    connector: Rpc

    @property
    def version(self) -> int:
        """The emulated Odoo version."""
        return self.handle.info.odoo_version


async def storable(x: Rpc, name: str, tracking: str = "none", code: str | None = None) -> int:
    """Create a storable product the way the running version wants it; return its id."""
    version = (await x.raw("common", "version"))["result"]["server_version_info"][0]
    values: dict[str, Any] = {"name": name, "tracking": tracking}
    if version == 17:
        values["detailed_type"] = "product"
    else:
        values.update({"type": "consu", "is_storable": True})
    if code:
        values["default_code"] = code
    product_id: int = await x("product.product", "create", values)
    return product_id


async def template_of(x: Rpc, product_id: int) -> int:
    """The template id of a variant."""
    rows = await x("product.product", "read", [product_id], fields=["product_tmpl_id"])
    template_id: int = rows[0]["product_tmpl_id"][0]
    return template_id


async def stock_location(x: Rpc) -> int:
    """The id of WH/Stock (8 in the sandbox and a real 18.0 demo database, 5 in a real 19.0 one)."""
    rows = await x(
        "stock.location", "search_read", [["complete_name", "=", "WH/Stock"]], fields=["id"]
    )
    location: int = rows[0]["id"]
    return location


async def count_stock(x: Rpc, product_id: int, quantity: float, lot: int | None = None) -> None:
    """Set on-hand quantity at WH/Stock through an inventory count."""
    values: dict[str, Any] = {
        "product_id": product_id,
        "location_id": await stock_location(x),
        "inventory_quantity": quantity,
    }
    if lot:
        values["lot_id"] = lot
    quant = await x("stock.quant", "create", values, context={"inventory_mode": True})
    await x("stock.quant", "action_apply_inventory", [quant], context={"inventory_mode": True})


async def on_hand(x: Rpc, product_id: int) -> dict[str, float]:
    """``qty_available``/``free_qty``/``outgoing_qty`` at WH/Stock."""
    rows = await x(
        "product.product",
        "read",
        [product_id],
        fields=["qty_available", "free_qty", "outgoing_qty", "virtual_available"],
        context={"location": await stock_location(x)},
    )
    return {k: v for k, v in rows[0].items() if k != "id"}


async def bom(x: Rpc, product_id: int, lines: list[tuple[int, float]], **values: Any) -> int:
    """A BOM for ``product_id`` with ``(component, qty)`` lines; return its id."""
    bom_id: int = await x(
        "mrp.bom",
        "create",
        {
            "product_tmpl_id": await template_of(x, product_id),
            "product_qty": 1,
            "bom_line_ids": [[0, 0, {"product_id": p, "product_qty": q}] for p, q in lines],
            **values,
        },
    )
    return bom_id


async def confirmed_mo(x: Rpc, product_id: int, quantity: float, bom_id: int) -> int:
    """A confirmed MO; return its id."""
    mo: int = await x(
        "mrp.production",
        "create",
        {"product_id": product_id, "product_qty": quantity, "bom_id": bom_id},
    )
    assert await x("mrp.production", "action_confirm", [mo]) is True
    return mo


async def mo_state(x: Rpc, mo: int) -> dict[str, Any]:
    """The MO fields the tests look at."""
    rows = await x(
        "mrp.production",
        "read",
        [mo],
        fields=[
            "name",
            "state",
            "product_qty",
            "qty_producing",
            "qty_produced",
            "reservation_state",
            "backorder_sequence",
        ],
    )
    row: dict[str, Any] = rows[0]
    return row


async def raw_moves(x: Rpc, mo: int) -> list[dict[str, Any]]:
    """Component moves of an MO."""
    rows: list[dict[str, Any]] = await x(
        "stock.move",
        "search_read",
        [["raw_material_production_id", "=", mo]],
        fields=["product_id", "product_uom_qty", "quantity", "picked", "state", "move_line_ids"],
    )
    return rows
