"""A sandbox Odoo with a plant's products, an OdooClient on it and a BOM store, for one test.

``BOM_REAL_ODOO=URL,TEMPLATE_DB,MASTER_PASSWORD,ADMIN_KEY_FILE`` (and ``BOM_REAL_ODOO_VERSION``,
default 18) runs the same tests against a real Odoo instead, each in a fresh copy of the
template database (``db.duplicate_database``, dropped after); tests of other versions skip.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.factory import BomStore
from cloud_relay.masterdata.sqlite import SqliteBomStore
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.sandbox import SandboxHandle, running_sandbox
from tests.cloud_relay.odoo.sandbox.scenario import ADMIN_UID, Rpc
from wire.bom import BomSubmission, parse_submission

#: default_code -> unit xmlid of the products every test plant has.
PRODUCTS = {
    "GB-100": "uom.product_uom_unit",
    "HSG-10": "uom.product_uom_unit",
    "SEAL-KIT": "uom.product_uom_unit",
    "CAST-10": "uom.product_uom_kgm",
    "BOLT-M8": "uom.product_uom_unit",
    "ORING-30": "uom.product_uom_unit",
    "GREASE": "uom.product_uom_kgm",
    "OIL": "uom.product_uom_litre",
}
WORKCENTERS = ("Assembly line", "Test bench", "CNC")


REAL_ODOO = os.environ.get("BOM_REAL_ODOO", "")
REAL_ODOO_VERSION = int(os.environ.get("BOM_REAL_ODOO_VERSION", "18"))


@dataclass
class BomRig:
    handle: SandboxHandle | None
    x: Rpc
    odoo: OdooClient
    store: BomStore
    config: BomConfig
    products: dict[str, int]
    workcenters: dict[str, int]

    version: int

    async def boms(self, code: str, *, active_test: bool = False) -> list[dict[str, Any]]:
        template = (
            await self.x(
                "product.product", "read", [self.products[code]], fields=["product_tmpl_id"]
            )
        )[0]["product_tmpl_id"][0]
        rows: list[dict[str, Any]] = await self.x(
            "mrp.bom",
            "search_read",
            [["product_tmpl_id", "=", template]],
            fields=["code", "active", "sequence", "bom_line_ids", "operation_ids", "type"],
            context={"active_test": active_test},
        )
        return rows

    async def picked(self, code: str) -> str:
        """The reference of the BOM a new MO of ``code`` gets."""
        mo = await self.x("mrp.production", "create", {"product_id": self.products[code]})
        bom = (await self.x("mrp.production", "read", [mo], fields=["bom_id"]))[0]["bom_id"]
        rows = await self.x("mrp.bom", "read", [bom[0]], fields=["code"])
        return str(rows[0]["code"])


async def plant(x: Rpc, version: int) -> tuple[dict[str, int], dict[str, int]]:
    """The plant's products and work centres in a fresh Odoo."""
    storable = "True" if version >= 18 else ""
    columns = ["id", "name", "default_code", "type", "uom_id/id"]
    rows = [
        [f"plant.{code.lower().replace('-', '_')}", code, code, "consu", unit]
        for code, unit in PRODUCTS.items()
    ]
    if storable:
        columns.append("is_storable")
        rows = [[*r, storable] for r in rows]
    answer = await x("product.product", "load", columns, rows)
    assert answer["messages"] == [], answer
    products = dict(zip(PRODUCTS, answer["ids"], strict=True))
    workcenters = {
        name: await x("mrp.workcenter", "create", {"name": name}) for name in WORKCENTERS
    }
    return products, workcenters


async def _db(http: httpx.AsyncClient, method: str, *args: str) -> None:
    payload = {
        "jsonrpc": "2.0",
        "method": "call",
        "params": {"service": "db", "method": method, "args": list(args)},
    }
    answer = (await http.post("/jsonrpc", json=payload)).json()
    assert "error" not in answer, answer


@contextlib.asynccontextmanager
async def _odoo(version: int) -> AsyncIterator[tuple[SandboxHandle | None, str, str, str]]:
    """(sandbox handle or None, base URL, database, admin API key)."""
    if not REAL_ODOO:
        async with running_sandbox(version) as handle:
            yield handle, handle.base_url, handle.database, handle.info.admin_api_key
        return
    if version != REAL_ODOO_VERSION:
        pytest.skip(f"BOM_REAL_ODOO is Odoo {REAL_ODOO_VERSION}")
    url, template, master, key_file = REAL_ODOO.split(",")
    key = Path(key_file).read_text().strip()  # noqa: ASYNC240 (a test set-up read)
    database = f"{template}_bom{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        await _db(http, "duplicate_database", master, template, database)
        try:
            yield None, url, database, key
        finally:
            await _db(http, "drop", master, database)


@contextlib.asynccontextmanager
async def bom_rig(
    tmp_path: Any, version: int = 18, config: BomConfig | None = None
) -> AsyncIterator[BomRig]:
    async with (
        _odoo(version) as (handle, url, database, key),
        httpx.AsyncClient(base_url=url, timeout=120) as http,
    ):
        x = Rpc(http, database, ADMIN_UID, key)
        products, workcenters = await plant(x, version)
        odoo = await OdooClient.connect(
            OdooConfig(url=url, database=database, login="admin", api_key=SecretStr(key))
        )
        store = SqliteBomStore(tmp_path / "relay.db")
        await store.open()
        try:
            yield BomRig(
                handle, x, odoo, store, config or BomConfig(), products, workcenters, version
            )
        finally:
            await store.close()
            await odoo.close()


def three_levels(top: str = "C", housing: str = "B", **top_changes: Any) -> BomSubmission:
    """GB-100 (normal, two operations) <- HSG-10 (grams of grease? no: kg casting) and a kit."""
    housing_rev = {
        "product": "HSG-10",
        "revision": housing,
        "status": "released",
        "unit": "Units",
        "operations": [{"name": "Machine", "workcenter": "CNC", "duration_minutes": 20}],
        "lines": [
            {"product": "CAST-10", "quantity": 2500, "unit": "g", "operation": "Machine"},
            {"product": "BOLT-M8", "quantity": 8, "unit": "Units", "operation": "Machine"},
        ],
    }
    kit = {
        "product": "SEAL-KIT",
        "revision": "A",
        "status": "released",
        "unit": "Units",
        "type": "kit",
        "lines": [
            {"product": "ORING-30", "quantity": 2, "unit": "Units"},
            {"product": "GREASE", "quantity": 0.02, "unit": "kg"},
        ],
    }
    gearbox = {
        "product": "GB-100",
        "revision": top,
        "status": "released",
        "unit": "Units",
        "operations": [
            {"name": "Assemble", "workcenter": "Assembly line", "duration_minutes": 12},
            {"name": "Test", "workcenter": "Test bench", "duration_minutes": 5},
        ],
        "lines": [
            {
                "product": "HSG-10",
                "quantity": 1,
                "unit": "Units",
                "revision": housing,
                "operation": "Assemble",
            },
            {
                "product": "SEAL-KIT",
                "quantity": 1,
                "unit": "Units",
                "revision": "A",
                "operation": "Assemble",
            },
            {"product": "OIL", "quantity": 0.4, "unit": "L", "operation": "Test"},
        ],
        **top_changes,
    }
    return parse_submission({"revisions": [gearbox, kit, housing_rev]})
