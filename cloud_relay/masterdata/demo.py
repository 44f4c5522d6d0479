"""``cloud-relay bom demo``: a revision submitted, approved and used by the next manufacturing
order, in an Odoo sandbox of its own (nothing outside a temporary directory is touched).

The plant's products and work centres are made in the sandbox; the engineering export
(``--file``, by default ``config/bom-example.csv``) is submitted by an engineer, shown as a
dry run against what Odoo uses today, approved by a second person and published bottom-up;
then a new MO of the top product picks it. A changed revision follows the same path, and the
next MO uses it while the first keeps its own.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from cloud_relay.masterdata import service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.catalog import boms_of_templates
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.diff import diff
from cloud_relay.masterdata.flow import history, publish_submission
from cloud_relay.masterdata.sqlite import SqliteBomStore
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.sandbox import running_sandbox
from wire.bom import BomSubmission
from wire.bom_csv import parse_bom_csv

#: The demo plant: default_code -> unit xmlid.
PLANT = {
    "GB-100": "uom.product_uom_unit",
    "HSG-10": "uom.product_uom_unit",
    "SEAL-KIT": "uom.product_uom_unit",
    "CAST-10": "uom.product_uom_kgm",
    "BOLT-M8": "uom.product_uom_unit",
    "ORING-30": "uom.product_uom_unit",
    "GREASE": "uom.product_uom_gram",
    "OIL": "uom.product_uom_litre",
}
WORKCENTERS = ("Assembly line", "Test bench", "CNC")


async def run_demo(csv: Path, version: int) -> int:
    """Run the demo, printing each step; exit code."""
    first = parse_bom_csv(csv.read_text(encoding="utf-8"))  # noqa: ASYNC240 (one small file)
    top = first.revisions[-1]
    lines = (
        *top.lines[:-1],
        top.lines[-1].model_copy(update={"quantity": top.lines[-1].quantity * 2}),
    )
    revision = top.model_copy(update={"revision": _next(top.revision), "lines": lines})
    changed = first.model_copy(update={"revisions": (*first.revisions[:-1], revision)})
    config = BomConfig()
    with tempfile.TemporaryDirectory(prefix="bom-demo-") as tmp:
        async with (
            running_sandbox(version) as handle,
            httpx.AsyncClient(base_url=handle.base_url, timeout=60) as http,
        ):
            key = handle.info.admin_api_key

            async def x(model: str, method: str, *args: Any, **kwargs: Any) -> Any:
                payload = {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "params": {
                        "service": "object",
                        "method": "execute_kw",
                        "args": [handle.database, 2, key, model, method, list(args), kwargs],
                    },
                }
                body = (await http.post("/jsonrpc", json=payload)).json()
                if "error" in body:
                    raise RuntimeError(body["error"]["data"]["message"])
                return body["result"]

            print(f"Odoo {version} sandbox at {handle.base_url}: making the plant's products")
            columns = ["id", "name", "default_code", "type", "uom_id/id"]
            rows = [[f"demo.p{i}", c, c, "consu", u] for i, (c, u) in enumerate(PLANT.items())]
            if version >= 18:
                columns.append("is_storable")
                rows = [[*r, "True"] for r in rows]
            await x("product.product", "load", columns, rows)
            for name in WORKCENTERS:
                await x("mrp.workcenter", "create", {"name": name})
            odoo = await OdooClient.connect(
                OdooConfig(
                    url=handle.base_url,
                    database=handle.database,
                    login="admin",
                    api_key=SecretStr(key),
                )
            )
            store = SqliteBomStore(Path(tmp) / "relay.db")
            await store.open()
            try:
                for submission in (first, changed):
                    await _step(store, odoo, config, submission, x)
                found = await history(store, odoo, top.product)
                print(f"\nhistory of {top.product}:")
                for entry in found.current:
                    print(f"  {entry.since:%H:%M:%S}  revision {entry.revision} current")
                for order, used, state, _ in found.orders:
                    print(f"  {order} was made with revision {used} ({state})")
            finally:
                await store.close()
                await odoo.close()
    return 0


def _next(revision: str) -> str:
    return (
        str(int(revision) + 1) if revision.isdigit() else revision[:-1] + chr(ord(revision[-1]) + 1)
    )


async def _step(
    store: SqliteBomStore, odoo: OdooClient, config: BomConfig, sub: BomSubmission, x: Any
) -> None:
    top = sub.revisions[-1]
    print(f"\nengineer submits {', '.join(f'{r.product} {r.revision}' for r in sub.revisions)}")
    outcome = await service.submit(store, odoo, config, sub, by="engineer", via="demo")
    print(f"  #{outcome.id} validated against Odoo, waiting for approval")
    result = await service.check(store, odoo, config, sub)
    plan = result.plans[-1]
    current = next((b for b in await boms_of_templates(odoo, [plan.template_id]) if b.active), None)
    codes = {}
    if current is not None:
        for row in await odoo.read(
            "product.product", [p for p, _, _, _ in current.lines], ["default_code"]
        ):
            codes[int(row["id"])] = str(row["default_code"])
    print("  dry run:\n" + "\n".join("    " + line for line in diff(plan, current, codes).lines()))
    await service.approve(store, config, outcome.id, by="lead", reason="demo")
    approved = await store.run(lambda tx: s.get_submission(tx, outcome.id))
    assert approved is not None
    await publish_submission(store, odoo, config, approved)
    done = await store.run(lambda tx: s.get_submission(tx, outcome.id))
    print(f"  lead approves #{outcome.id}: {done.state if done else '?'}")
    product = (await x("product.product", "search", [["default_code", "=", top.product]]))[0]
    mo = await x("mrp.production", "create", {"product_id": product, "product_qty": 1})
    await x("mrp.production", "action_confirm", [mo])
    read = (await x("mrp.production", "read", [mo], fields=["name", "bom_id"]))[0]
    moves = await x(
        "stock.move",
        "search_read",
        [["raw_material_production_id", "=", mo]],
        fields=["product_id", "product_uom_qty", "product_uom"],
    )
    print(f"  next MO {read['name']} uses BOM {read['bom_id'][1]!r}:")
    for move in moves:
        print(f"    {move['product_id'][1]}: {move['product_uom_qty']:g} {move['product_uom'][1]}")
