"""The demo's master data in Odoo, and what Odoo made of the demo line's events.

``setup`` creates what the simulated line needs before its events can post: the finished
product, its component with stock on hand, the line's work centre, a BOM with one operation on
it, and confirmed manufacturing orders named as the line will name them. Everything is looked
up first, so running it again creates nothing twice. ``report`` reads back, per order, what
Odoo now holds: produced, scrapped and consumed quantities.

It lives beside the client because only ``cloud_relay.odoo`` speaks Odoo's protocol; the
``edge-agent demo`` runs it as a child process (``python -m cloud_relay.odoo.demo_data``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cloud_relay.errors import ConfigError
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.errors import OdooError

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
#: Marks the BOM this module made, so a rerun finds it and leaves other BOMs alone.
BOM_CODE = "plant-link demo"
#: On-hand stock of the component, in multiples of what the orders need.
STOCK_MARGIN = 2


@dataclass(frozen=True)
class DemoSpec:
    """What the demo line makes: names as the line's events carry them, and how much."""

    prefix: str = "WH/MO/"
    orders: int = 3
    order_qty: float = 200.0
    finished: str = "WIDGET"
    component: str = "BOLT-M6"
    component_per_unit: float = 4.0
    workcenter: str = "Line 1"

    def order_names(self) -> list[str]:
        """The MO names, ``{prefix}{n:05d}`` from 1: the names the line uses."""
        return [f"{self.prefix}{n:05d}" for n in range(1, self.orders + 1)]


@dataclass(frozen=True)
class OrderRef:
    """A manufacturing order as setup left it."""

    name: str
    id: int
    state: str


@dataclass(frozen=True)
class SetupResult:
    """The ids of what setup found or created."""

    odoo_version: str
    orders: list[OrderRef]
    products: dict[str, int]
    workcenter: int
    bom: int


@dataclass(frozen=True)
class OrderReport:
    """One order as Odoo holds it now; ``found`` is False when no MO has the name."""

    name: str
    found: bool
    state: str | None
    qty_producing: float
    qty_produced: float
    produced: float
    """qty_produced for a done MO, else qty_producing: what the order has made so far."""
    scrapped: float
    """Sum of the order's validated scraps."""
    consumed: float
    """The component's raw move quantity, where picked."""


async def set_up(client: OdooClient, spec: DemoSpec) -> SetupResult:
    """Find or create the demo's products, stock, work centre, BOM and confirmed MOs."""
    finished = await _product(client, spec.finished, "Widget (plant-link demo)")
    component = await _product(client, spec.component, "Bolt M6 (plant-link demo)")
    need = spec.orders * spec.order_qty * spec.component_per_unit * STOCK_MARGIN
    await _stock_at_least(client, component, need)
    workcenter = await _workcenter(client, spec.workcenter)
    bom = await _bom(client, spec, finished, component, workcenter)
    orders = await _orders(client, spec, finished, bom)
    return SetupResult(
        client.server_version,
        orders,
        {spec.finished: finished, spec.component: component},
        workcenter,
        bom,
    )


async def report(client: OdooClient, names: Sequence[str], component: str) -> list[OrderReport]:
    """What Odoo holds for the orders ``names``, in that order."""
    rows = await client.search_read(
        "mrp.production",
        [["name", "in", list(names)]],
        ["name", "state", "qty_producing", "qty_produced"],
    )
    by_name = {str(r["name"]): r for r in rows}
    ids = [int(r["id"]) for r in rows]
    scrapped: dict[int, float] = dict.fromkeys(ids, 0.0)
    consumed: dict[int, float] = dict.fromkeys(ids, 0.0)
    component_ids = await client.search("product.product", [["default_code", "=", component]])
    if ids:
        scraps = await client.search_read(
            "stock.scrap",
            [["production_id", "in", ids], ["state", "=", "done"]],
            ["production_id", "scrap_qty"],
        )
        for scrap in scraps:
            scrapped[_id_of(scrap["production_id"])] += float(scrap["scrap_qty"])
        moves = await client.search_read(
            "stock.move",
            [
                ["raw_material_production_id", "in", ids],
                ["product_id", "in", component_ids],
                ["picked", "=", True],
                ["state", "!=", "cancel"],
            ],
            ["raw_material_production_id", "quantity"],
        )
        for move in moves:
            consumed[_id_of(move["raw_material_production_id"])] += float(move["quantity"])
    return [_order_report(name, by_name.get(name), scrapped, consumed) for name in names]


def _order_report(
    name: str,
    row: dict[str, Any] | None,
    scrapped: dict[int, float],
    consumed: dict[int, float],
) -> OrderReport:
    if row is None:
        return OrderReport(name, False, None, 0.0, 0.0, 0.0, 0.0, 0.0)
    producing = float(row["qty_producing"] or 0.0)
    produced = float(row["qty_produced"] or 0.0)
    mo_id = int(row["id"])
    return OrderReport(
        name,
        True,
        str(row["state"]),
        producing,
        produced,
        produced if row["state"] == "done" else producing,
        scrapped[mo_id],
        consumed[mo_id],
    )


# -- setup steps -------------------------------------------------------------------------------


async def _product(client: OdooClient, code: str, name: str) -> int:
    """A storable, untracked product with internal reference ``code``."""
    found = await client.search("product.product", [["default_code", "=", code]], limit=1)
    if found:
        return found[0]
    values: dict[str, Any] = {"name": name, "default_code": code, "tracking": "none"}
    if client.version == 17:
        values["detailed_type"] = "product"
    else:
        values.update({"type": "consu", "is_storable": True})
    return await client.create("product.product", values)


async def _stock_at_least(client: OdooClient, product: int, quantity: float) -> None:
    """Count ``quantity`` on hand at the main warehouse's stock unless there is that much."""
    warehouse = await client.find_one("stock.warehouse", [], ["lot_stock_id"], order="id")
    location = _id_of(warehouse["lot_stock_id"])
    row = (
        await client.read(
            "product.product", [product], ["qty_available"], context={"location": location}
        )
    )[0]
    if float(row["qty_available"] or 0.0) >= quantity:
        return
    counting = {"inventory_mode": True}
    quant = await client.create(
        "stock.quant",
        {"product_id": product, "location_id": location, "inventory_quantity": quantity},
        context=counting,
    )
    await client.execute("stock.quant", "action_apply_inventory", [quant], context=counting)


async def _workcenter(client: OdooClient, name: str) -> int:
    found = await client.search("mrp.workcenter", [["name", "=", name]], limit=1, order="id")
    if found:
        return found[0]
    return await client.create("mrp.workcenter", {"name": name})


async def _bom(
    client: OdooClient, spec: DemoSpec, finished: int, component: int, workcenter: int
) -> int:
    """The demo's BOM: flexible consumption, one component line, one operation on the line."""
    units = {
        int(r["id"]): _id_of(r["uom_id"])
        for r in await client.read("product.product", [finished, component], ["uom_id"])
    }
    template = (await client.read("product.product", [finished], ["product_tmpl_id"]))[0]
    template_id = _id_of(template["product_tmpl_id"])
    found = await client.search(
        "mrp.bom", [["product_tmpl_id", "=", template_id], ["code", "=", BOM_CODE]], limit=1
    )
    if found:
        return found[0]
    line = {
        "product_id": component,
        "product_qty": spec.component_per_unit,
        "product_uom_id": units[component],
    }
    operation = {"name": f"Make on {spec.workcenter}", "workcenter_id": workcenter}
    return await client.create(
        "mrp.bom",
        {
            "product_tmpl_id": template_id,
            "code": BOM_CODE,
            "product_qty": 1,
            # Odoo copies the product's unit only in the form; over RPC it must be sent.
            "product_uom_id": units[finished],
            "consumption": "flexible",
            "bom_line_ids": [[0, 0, line]],
            "operation_ids": [[0, 0, operation]],
        },
    )


async def _orders(client: OdooClient, spec: DemoSpec, finished: int, bom: int) -> list[OrderRef]:
    """Confirmed MOs named as the line names them (Odoo keeps a name given at create)."""
    names = spec.order_names()
    rows = await client.search_read("mrp.production", [["name", "in", names]], ["name", "state"])
    existing = {str(r["name"]): (int(r["id"]), str(r["state"])) for r in rows}
    unit = _id_of((await client.read("mrp.bom", [bom], ["product_uom_id"]))[0]["product_uom_id"])
    orders: list[OrderRef] = []
    for name in names:
        mo_id, state = existing.get(name, (0, ""))
        if not mo_id:
            mo_id = await client.create(
                "mrp.production",
                {
                    "name": name,
                    "product_id": finished,
                    "product_qty": spec.order_qty,
                    "product_uom_id": unit,
                    "bom_id": bom,
                },
            )
            state = "draft"
        if state == "draft":
            await client.execute("mrp.production", "action_confirm", [mo_id])
            state = (await client.read("mrp.production", [mo_id], ["state"]))[0]["state"]
        orders.append(OrderRef(name, mo_id, str(state)))
    return orders


def _id_of(value: Any) -> int:
    """The id of a many2one as ``read`` answers it (``[id, name]``)."""
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return int(value)


# -- command line ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cloud_relay.odoo.demo_data",
        description="Master data for edge-agent demo in an Odoo, and a report of its orders.",
    )
    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument("--url", required=True, help="Odoo base URL")
    connection.add_argument("--database", required=True, help="Odoo database")
    connection.add_argument("--login", required=True, help="login of the account to act as")
    connection.add_argument(
        "--api-key-file", required=True, type=Path, help="file holding the account's API key"
    )
    connection.add_argument("--json", action="store_true", help="machine-readable output")
    defaults = DemoSpec()
    connection.add_argument(
        "--component",
        default=defaults.component,
        help="internal reference of the component (default %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    setup = sub.add_parser(
        "setup",
        parents=[connection],
        help="create products, stock, work centre, BOM and confirmed MOs (idempotent)",
    )
    setup.add_argument(
        "--prefix", default=defaults.prefix, help="MO name prefix (default %(default)s)"
    )
    setup.add_argument(
        "--orders", type=int, default=defaults.orders, help="MOs (default %(default)s)"
    )
    setup.add_argument(
        "--order-qty",
        type=float,
        default=defaults.order_qty,
        help="quantity to produce per MO (default %(default)s)",
    )
    setup.add_argument(
        "--finished",
        default=defaults.finished,
        help="internal reference of the finished product (default %(default)s)",
    )
    setup.add_argument(
        "--component-per-unit",
        type=float,
        default=defaults.component_per_unit,
        help="components per finished unit in the BOM (default %(default)s)",
    )
    setup.add_argument(
        "--workcenter",
        default=defaults.workcenter,
        help="work centre of the BOM's operation (default %(default)s)",
    )
    show = sub.add_parser("report", parents=[connection], help="what Odoo holds per order")
    show.add_argument("--orders", nargs="+", required=True, metavar="NAME", help="MO names")
    return parser


async def _run(args: argparse.Namespace) -> int:
    config = OdooConfig(
        url=args.url, database=args.database, login=args.login, api_key_file=args.api_key_file
    )
    async with await OdooClient.connect(config) as client:
        if args.command == "setup":
            if args.orders < 1:
                raise ConfigError("--orders must be at least 1")
            spec = DemoSpec(
                args.prefix,
                args.orders,
                args.order_qty,
                args.finished,
                args.component,
                args.component_per_unit,
                args.workcenter,
            )
            _print_setup(await set_up(client, spec), args.json)
        else:
            _print_report(await report(client, args.orders, args.component), args.json)
    return EXIT_OK


def _print_setup(result: SetupResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(result)))
        return
    products = ", ".join(f"{code} (id {pid})" for code, pid in result.products.items())
    print(f"Odoo {result.odoo_version}: products {products}")
    print(f"work centre id {result.workcenter}, bill of materials id {result.bom}")
    for order in result.orders:
        print(f"  {order.name}  id {order.id}  {order.state}")


def _print_report(orders: list[OrderReport], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"orders": [asdict(o) for o in orders]}))
        return
    print(f"{'order':<24}{'state':<12}{'produced':>10}{'scrapped':>10}{'consumed':>10}")
    for o in orders:
        state = o.state or "missing"
        print(f"{o.name:<24}{state:<12}{o.produced:>10g}{o.scrapped:>10g}{o.consumed:>10g}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; exit 1 when Odoo refuses (its message on stderr), 2 for bad options."""
    args = _parser().parse_args(argv)
    try:
        return asyncio.run(_run(args))
    except OdooError as exc:
        print(f"demo_data: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except (ConfigError, ValidationError) as exc:
        print(f"demo_data: {exc}", file=sys.stderr)
        return EXIT_CONFIG


if __name__ == "__main__":
    sys.exit(main())
