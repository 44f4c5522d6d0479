"""The whole chain, then three kinds of drift made in Odoo: the report names exactly those."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.model import Report
from cloud_relay.reconcile.runner import Reconciler
from tests.cloud_relay.posting.harness import Rig, needs_sandbox, rig

pytestmark = pytest.mark.timeout(120)
VERSIONS = pytest.mark.parametrize("version", [18, 19], ids=lambda v: f"odoo{v}")
STOCK, INTERNAL = 8, 7


@contextlib.asynccontextmanager
async def reconciler(r: Rig, path: Path) -> AsyncIterator[tuple[Reconciler, SqliteReportStore]]:
    """A reconciler over the rig's stores and sandbox, its history in the same file."""
    assert r.odoo is not None
    config = OdooConfig(
        url=r.odoo.base_url,
        database=r.odoo.database,
        login=r.odoo.login,
        api_key=SecretStr(r.odoo.api_key),
        retry_backoff_seconds=0.01,
    )
    client = await OdooClient.connect(config)
    history = SqliteReportStore(path)
    await history.open()
    try:
        yield Reconciler(client, r.store, r.inbox, history), history
    finally:
        await history.close()
        await client.close()


async def _place(r: Rig, name: str) -> int:
    return int(
        await r.x(
            "stock.location", "create", {"name": name, "location_id": STOCK, "usage": "internal"}
        )
    )


async def _move_in_odoo(
    r: Rig, version: int, product: int, src: int, dest: int, qty: float
) -> None:
    move: dict[str, Any] = {
        "product_id": product,
        "product_uom_qty": qty,
        "product_uom": 1,
        "location_id": src,
        "location_dest_id": dest,
        "quantity": qty,
        "picked": True,
    }
    if version <= 18:
        move["name"] = "by hand"
    picking = await r.x(
        "stock.picking",
        "create",
        {
            "picking_type_id": INTERNAL,
            "location_id": src,
            "location_dest_id": dest,
            "move_ids": [[0, 0, move]],
        },
    )
    assert await r.x("stock.picking", "button_validate", [picking]) is True


def _summary(report: Report) -> list[tuple[str, str, float | None, float | None]]:
    return sorted((d.kind, d.subject, d.relay, d.odoo) for d in report.differences)


async def _chain(r: Rig) -> tuple[Any, int, str]:
    """Production, consumption, a transfer and a receipt, all applied; one event dead-lettered."""
    line = await r.line()
    await _place(r, "Shelf 1")
    mo, name = await r.mo(line, 10)
    p = r.plant
    await r.send(
        p.event("production.reported", order=name, qty=3),
        p.event("material.consumed", order=name, product="BOLT", qty=6),
        p.event(
            "stock.transferred",
            product="BOLT",
            qty=20,
            from_location="WH/Stock",
            to_location="WH/Stock/Shelf 1",
        ),
        p.event("stock.received", product="RESIN", qty=10, location="WH/Stock", lot="R-1"),
    )
    await r.settle()
    assert await r.store.list_dead_letters() == []
    return line, mo, name


@VERSIONS
async def test_a_clean_chain_reconciles_without_differences(tmp_path: Path, version: int) -> None:
    needs_sandbox()
    async with rig(tmp_path, version) as r:
        await _chain(r)
        async with reconciler(r, tmp_path / "inbox.db") as (reconcile, history):
            report = await reconcile.run()
            assert report.status == "complete"
            assert report.differences == ()
            assert report.checked["orders"] == 1 and report.checked["places"] == 3
            assert (await history.latest_complete()) == report


@VERSIONS
async def test_three_drifts_are_named_with_both_numbers_and_nothing_else(
    tmp_path: Path, version: int
) -> None:
    needs_sandbox()
    async with rig(tmp_path, version) as r:
        line, mo, name = await _chain(r)
        overflow = await _place(r, "Overflow")
        shelf = (
            await r.x("stock.location", "search", [["complete_name", "=", "WH/Stock/Shelf 1"]])
        )[0]
        # 1. A quantity edited by hand: the consumed bolts of the order, 6 -> 8.
        raw = await r.search_read(
            "stock.move",
            [["raw_material_production_id", "=", mo], ["product_id", "=", line.bolt]],
            "quantity",
        )
        await r.x("stock.move", "write", [raw[0]["id"]], {"quantity": 8})
        # 2. A move made in Odoo directly: 5 bolts from the shelf to an overflow place.
        await _move_in_odoo(r, version, line.bolt, shelf, overflow, 5)
        # 3. A dead-lettered event: a component Odoo does not know.
        await r.send(r.plant.event("material.consumed", order=name, product="GHOST", qty=1))
        await r.settle()
        dead = await r.store.list_dead_letters()
        assert len(dead) == 1

        async with reconciler(r, tmp_path / "inbox.db") as (reconcile, _):
            report = await reconcile.run()
        assert report.status == "complete"
        assert _summary(report) == [
            ("events", name, 3.0, 2.0),
            ("mo_consumed", f"{name} BOLT", 6.0, 8.0),
            ("on_hand", "BOLT at WH/Stock/Shelf 1", 20.0, 15.0),
        ]
        causes = {d.kind: d.cause for d in report.differences}
        assert causes["mo_consumed"] == "changed in Odoo outside the relay (an edit by hand)"
        assert causes["on_hand"].startswith("a move made in Odoo outside the relay (WH/INT/")
        assert f"dead-lettered event {dead[0].event_id} (material.consumed)" in causes["events"]
        assert "GHOST" in causes["events"]
        on_hand = next(d for d in report.differences if d.kind == "on_hand")
        assert on_hand.detail == {"reserved": 0.0, "available": 15.0, "outside": -5.0}
        assert report.counts()["on_hand"] == 1 and report.counts()["mo_good"] == 0
        assert sum(report.odoo_calls.values()) <= 12
