"""The demo's master data and report, against the Odoo sandbox of each supported version."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.demo_data import BOM_CODE, DemoSpec, main, report, set_up
from cloud_relay.odoo.sandbox import SandboxHandle, running_sandbox

SPEC = DemoSpec(prefix="WH/MO/", orders=3, order_qty=50)


@pytest.fixture(params=[17, 18, 19], ids=lambda v: f"odoo{v}")
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[SandboxHandle]:
    async with running_sandbox(request.param) as handle:
        yield handle


@pytest.fixture
async def admin(sandbox: SandboxHandle) -> AsyncIterator[OdooClient]:
    config = OdooConfig(
        url=sandbox.base_url,
        database=sandbox.database,
        login=sandbox.info.admin_login,
        api_key=SecretStr(sandbox.info.admin_api_key),
    )
    async with await OdooClient.connect(config) as client:
        yield client


async def _count(client: OdooClient, model: str, domain: list[object]) -> int:
    return len(await client.search(model, domain))


async def test_setup_twice_creates_everything_once(admin: OdooClient) -> None:
    first = await set_up(admin, SPEC)
    second = await set_up(admin, SPEC)
    assert second == first
    assert [o.name for o in first.orders] == ["WH/MO/00001", "WH/MO/00002", "WH/MO/00003"]
    assert {o.state for o in first.orders} == {"confirmed"}
    for code in ("WIDGET", "BOLT-M6"):
        assert await _count(admin, "product.product", [["default_code", "=", code]]) == 1
    assert await _count(admin, "mrp.workcenter", [["name", "=", "Line 1"]]) == 1
    assert await _count(admin, "mrp.bom", [["code", "=", BOM_CODE]]) == 1
    names = SPEC.order_names()
    assert await _count(admin, "mrp.production", [["name", "in", names]]) == 3
    # Stock was counted once, not again by the second run.
    bolt = first.products["BOLT-M6"]
    on_hand = await admin.read("product.product", [bolt], ["qty_available"])
    assert on_hand[0]["qty_available"] == 3 * 50 * 4 * 2
    # Each MO has the work order the line's operation events go to, and the component move.
    for order in first.orders:
        workorders = await admin.search_read(
            "mrp.workorder", [["production_id", "=", order.id]], ["workcenter_id"]
        )
        assert [w["workcenter_id"][1] for w in workorders] == ["Line 1"]
        moves = await admin.search_read(
            "stock.move",
            [["raw_material_production_id", "=", order.id]],
            ["product_id", "product_uom_qty"],
        )
        assert [(m["product_id"][0], m["product_uom_qty"]) for m in moves] == [(bolt, 200)]


async def test_setup_adds_orders_to_an_earlier_run(admin: OdooClient) -> None:
    await set_up(admin, SPEC)
    more = await set_up(admin, DemoSpec(prefix="WH/MO/", orders=5, order_qty=50))
    assert [o.name for o in more.orders][-2:] == ["WH/MO/00004", "WH/MO/00005"]
    assert await _count(admin, "mrp.production", [["name", "=like", "WH/MO/%"]]) == 5


async def test_report_reads_production_scrap_and_consumption(admin: OdooClient) -> None:
    result = await set_up(admin, SPEC)
    mo = result.orders[0].id
    move = (
        await admin.search_read("stock.move", [["raw_material_production_id", "=", mo]], ["id"])
    )[0]["id"]
    await admin.write(
        "mrp.production",
        [mo],
        {"qty_producing": 7, "move_raw_ids": [[1, move, {"quantity": 28, "picked": True}]]},
    )
    location = (await admin.read("mrp.production", [mo], ["location_src_id"]))[0]
    for qty in (2, 1):
        scrap = await admin.create(
            "stock.scrap",
            {
                "product_id": result.products["WIDGET"],
                "scrap_qty": qty,
                "location_id": location["location_src_id"][0],
                "production_id": mo,
            },
        )
        await admin.execute("stock.scrap", "do_scrap", [scrap])

    orders = await report(admin, ["WH/MO/00001", "WH/MO/00002", "WH/MO/09999"], "BOLT-M6")

    first, second, missing = orders
    assert (first.found, first.state, first.produced, first.qty_producing) == (
        True,
        "progress",
        7,
        7,
    )
    assert (first.scrapped, first.consumed) == (3, 28)
    assert (second.produced, second.scrapped, second.consumed) == (0, 0, 0)
    assert (missing.found, missing.state, missing.produced) == (False, None, 0)


def _cli(handle: SandboxHandle, tmp_path: Path, key: str, *args: str) -> list[str]:
    key_file = tmp_path / "key"
    key_file.write_text(key)
    return [
        "--url",
        handle.base_url,
        "--database",
        handle.database,
        "--api-key-file",
        str(key_file),
        *args,
    ]


async def test_cli_prints_orders_and_products_as_json(
    sandbox: SandboxHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    info = sandbox.info
    argv = _cli(sandbox, tmp_path, info.admin_api_key, "--login", info.admin_login)
    code = await asyncio.to_thread(main, ["setup", *argv, "--orders", "2", "--json"])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert [o["name"] for o in shown["orders"]] == ["WH/MO/00001", "WH/MO/00002"]
    assert set(shown["products"]) == {"WIDGET", "BOLT-M6"}

    code = await asyncio.to_thread(main, ["report", *argv, "--orders", "WH/MO/00002", "--json"])
    assert code == 0
    (order,) = json.loads(capsys.readouterr().out)["orders"]
    assert order["name"] == "WH/MO/00002" and order["state"] == "confirmed"
    assert {"produced", "scrapped", "consumed", "qty_producing", "qty_produced"} <= set(order)


async def test_cli_names_the_groups_when_the_account_lacks_a_right(
    sandbox: SandboxHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The connector account may post but not create master data: exit 1, Odoo's reason."""
    argv = _cli(sandbox, tmp_path, sandbox.api_key, "--login", sandbox.login)
    code = await asyncio.to_thread(main, ["setup", *argv])
    assert code == 1
    err = capsys.readouterr().err
    assert "lacks the create right on product.product" in err
    assert "Manufacturing/Administrator" in err
