"""Reconcile run over many open orders and quants: time and Odoo calls, same run.

Run by hand: ``python3 bench/reconcile.py [--orders 1000] [--quants 5000]``. A fresh Odoo 18
sandbox in this process gets ``--orders`` confirmed manufacturing orders and ``--quants``
quants (products x 5 internal locations), created in bulk as admin; the relay's posting store
(a temporary SQLite file) gets a ledger per order and per product as the writer would have left
them. One :class:`~cloud_relay.reconcile.runner.Reconciler` run is timed, as the connector; the
Odoo calls are those the report counts and those the sandbox saw. The limit beside it: one
``stock.quant`` ``search_read`` of every quant, the single largest read of the run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.sandbox import running_sandbox
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.runner import Reconciler

PLACES = 5


async def _setup(
    admin: OdooClient, orders: int, quants: int
) -> tuple[list[int], list[int], list[int]]:
    products = max(1, quants // PLACES)
    product_ids = await admin.execute(
        "product.product",
        "create",
        [
            {"name": f"P{i}", "default_code": f"P{i}", "type": "consu", "is_storable": True}
            for i in range(products)
        ],
    )
    places = await admin.execute(
        "stock.location",
        "create",
        [{"name": f"Bin {i}", "location_id": 8, "usage": "internal"} for i in range(PLACES)],
    )
    quant_ids = await admin.execute(
        "stock.quant",
        "create",
        [
            {"product_id": p, "location_id": loc, "inventory_quantity": 10}
            for p in product_ids
            for loc in places
        ],
        context={"inventory_mode": True},
    )
    await admin.execute("stock.quant", "action_apply_inventory", quant_ids)
    mo_ids = await admin.execute(
        "mrp.production",
        "create",
        [{"product_id": product_ids[i % products], "product_qty": 5} for i in range(orders)],
    )
    await admin.execute("mrp.production", "action_confirm", mo_ids)
    return list(product_ids), list(places), list(mo_ids)


def _ledgers(path: Path, mos: list[dict[str, Any]], products: list[int], places: list[int]) -> None:
    since = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    now = datetime.now(UTC).isoformat()
    rows = [
        (
            f"mo:{m['name']}",
            json.dumps({"mo_id": m["id"], "mo_name": m["name"], "producing_written": 0.0}),
            now,
        )
        for m in mos
    ]
    for product in products:
        moved = {f"{p}\x1f": 0.0 for p in places}
        ledger = {
            "product_id": product,
            "moved": moved,
            "names": {},
            "since": since,
            "first_picking": 0,
            "applied": 1,
        }
        rows.append((f"stock:P{product}", json.dumps(ledger), now))
    db = sqlite3.connect(path)
    with db:
        db.executemany("INSERT INTO orders (order_key, ledger, updated_at) VALUES (?, ?, ?)", rows)
    db.close()


async def measure(orders: int, quants: int) -> dict[str, Any]:
    async with running_sandbox(18) as handle:
        info = handle.info

        def config(login: str, key: str) -> OdooConfig:
            return OdooConfig(
                url=handle.base_url,
                database=handle.database,
                login=login,
                api_key=SecretStr(key),
                timeout_seconds=600,
            )

        admin = await OdooClient.connect(config(info.admin_login, info.admin_api_key))
        started = time.perf_counter()
        products, places, mo_ids = await _setup(admin, orders, quants)
        setup_seconds = time.perf_counter() - started
        mos = await admin.search_read("mrp.production", [["id", "in", mo_ids]], ["name"])
        with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as tmp:
            path = Path(tmp) / "relay.db"
            inbox, store, history = (
                SqliteInbox(path),
                SqlitePostingStore(path),
                SqliteReportStore(path),
            )
            for s in (inbox, store, history):
                await s.open()
            _ledgers(path, mos, products, places)
            client = await OdooClient.connect(config(handle.login, handle.api_key))
            handle.faults.reset_calls()
            started = time.perf_counter()
            report = await Reconciler(client, store, inbox, history).run()
            seconds = time.perf_counter() - started
            sandbox_calls = sum(handle.faults.calls().values())
            started = time.perf_counter()
            everything = await client.search_read(
                "stock.quant",
                [["product_id", "in", products], ["location_id.usage", "=", "internal"]],
                ["quantity", "reserved_quantity"],
            )
            limit_seconds = time.perf_counter() - started
            await client.close()
            for s in (inbox, store, history):
                await s.close()
        await admin.close()
    return {
        "orders": orders,
        "quants": len(everything),
        "status": report.status,
        "seconds": seconds,
        "odoo_calls": sum(report.odoo_calls.values()),
        "calls_by_model": report.odoo_calls,
        "sandbox_calls": sandbox_calls,
        "differences": len(report.differences),
        "checked": report.checked,
        "setup_seconds": setup_seconds,
        "one_quant_read_seconds": limit_seconds,
    }


def run(orders: int = 1000, quants: int = 5000) -> dict[str, Any]:
    """Measure and print; returns the figures."""
    result = asyncio.run(measure(orders, quants))
    print(
        f"reconcile of {result['orders']} open orders and {result['quants']} quants: "
        f"{result['status']}, {result['seconds']:.2f} s, {result['odoo_calls']} Odoo calls "
        f"(sandbox counted {result['sandbox_calls']}), {result['differences']} differences"
    )
    print(f"calls by model: {result['calls_by_model']}")
    print(
        f"limit: one search_read of every quant {result['one_quant_read_seconds']:.2f} s; "
        f"set-up {result['setup_seconds']:.1f} s"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--quants", type=int, default=5000)
    args = parser.parse_args()
    run(args.orders, args.quants)


if __name__ == "__main__":
    main()
