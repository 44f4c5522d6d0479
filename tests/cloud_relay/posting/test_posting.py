"""The Odoo writer against the sandbox, for the shapes of Odoo 17, 18 and 19."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest

from cloud_relay.metrics import RelayMetrics
from tests.cloud_relay.odoo.sandbox.scenario import count_stock, on_hand, storable
from tests.cloud_relay.posting.harness import Rig, rig

pytestmark = pytest.mark.timeout(90)
VERSIONS = pytest.mark.parametrize("version", [17, 18, 19], ids=lambda v: f"odoo{v}")


async def _mo(r: Rig, mo: int) -> dict[str, Any]:
    return (await r.read("mrp.production", [mo], "name", "state", "qty_producing", "qty_produced"))[
        0
    ]


async def _component(r: Rig, mo: int, product: int) -> dict[str, Any]:
    rows = await r.search_read(
        "stock.move",
        [["raw_material_production_id", "=", mo], ["product_id", "=", product]],
        "quantity",
        "picked",
        "state",
        "move_line_ids",
    )
    assert len(rows) == 1, rows
    return rows[0]


async def _lot(r: Rig, product: int, name: str) -> int:
    lot: int = await r.x("stock.lot", "create", {"name": name, "product_id": product})
    return lot


@VERSIONS
async def test_production_and_consumption_fold_into_absolute_writes(
    tmp_path: Path, version: int
) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        lot_a = await _lot(r, line.lotted, "RES-A")
        await count_stock(r.x, line.lotted, 50, lot=lot_a)
        mo, name = await r.mo(line, 10)
        p = r.plant
        events = [p.event("production.reported", order=name, qty=1, lot="W-1") for _ in range(4)]
        events += [
            p.event("material.consumed", order=name, product="BOLT", qty=2) for _ in range(4)
        ]
        events.append(p.event("material.consumed", order=name, product="RESIN", qty=3, lot="RES-A"))
        await r.send(*events)
        await r.settle()

        state = await _mo(r, mo)
        assert state["qty_producing"] == 4
        assert state["state"] == "progress"
        bolt = await _component(r, mo, line.bolt)
        assert (bolt["quantity"], bolt["picked"]) == (8, True)
        resin_lines = await r.search_read(
            "stock.move.line",
            [["move_id", "=", (await _component(r, mo, line.lotted))["id"]]],
            "lot_id",
            "quantity",
            "picked",
        )
        assert [(ln["lot_id"][0], ln["quantity"], ln["picked"]) for ln in resin_lines] == [
            (lot_a, 3, True)
        ]
        lot_field = "lot_producing_ids" if version >= 19 else "lot_producing_id"
        produced_lot = (await r.read("mrp.production", [mo], lot_field))[0][lot_field]
        lot_id = produced_lot[0]
        assert (await r.read("stock.lot", [lot_id], "name"))[0]["name"] == "W-1"

        # More events later add to what was written: absolute values, cumulative.
        await r.send(p.event("production.reported", order=name, qty=2))
        await r.send(p.event("material.consumed", order=name, product="BOLT", qty=4))
        await r.settle()
        assert (await _mo(r, mo))["qty_producing"] == 6
        assert (await _component(r, mo, line.bolt))["quantity"] == 12
        stats = r.writer.stats()
        assert stats.events_posted == 11
        assert stats.dead_lettered == 0


@VERSIONS
async def test_completion_with_and_without_backorder(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        lot_a = await _lot(r, line.lotted, "RES-A")
        await count_stock(r.x, line.lotted, 50, lot=lot_a)
        mo, name = await r.mo(line, 10)
        p = r.plant
        await r.send(
            p.event("production.reported", order=name, qty=4, lot="W-1"),
            p.event("material.consumed", order=name, product="BOLT", qty=8),
            p.event("material.consumed", order=name, product="RESIN", qty=4, lot="RES-A"),
            p.event("order.completed", order=name, backorder=True),
            # These count on the backorder Odoo made for the 6 left.
            p.event("production.reported", order=name, qty=6, lot="W-2"),
            p.event("material.consumed", order=name, product="BOLT", qty=12),
            p.event("material.consumed", order=name, product="RESIN", qty=6, lot="RES-A"),
            p.event("order.completed", order=name, backorder=False),
        )
        await r.settle()
        first = await _mo(r, mo)
        assert first["state"] == "done"
        assert first["qty_produced"] == 4
        orders = await r.search_read(
            "mrp.production", [["product_id", "=", line.finished]], "name", "state", "qty_produced"
        )
        assert sorted((o["state"], o["qty_produced"]) for o in orders) == [("done", 4), ("done", 6)]
        assert (await on_hand(r.x, line.finished))["qty_available"] == 10
        assert (await on_hand(r.x, line.bolt))["qty_available"] == 1000 - 20
        assert (await on_hand(r.x, line.lotted))["qty_available"] == 50 - 10
        assert r.writer.stats().dead_lettered == 0


@VERSIONS
async def test_scrap_is_validated_once_and_tied_to_the_order(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        _, name = await r.mo(line, 10)
        p = r.plant
        await r.send(
            p.event("scrap.reported", order=name, product="BOLT", qty=3, reason="stripped"),
            p.event("scrap.reported", order=name, product="BOLT", qty=2),
            p.event("scrap.reported", product="BOLT", qty=1),
        )
        await r.settle()
        scraps = await r.search_read(
            "stock.scrap", [["product_id", "=", line.bolt]], "state", "scrap_qty", "production_id"
        )
        found = sorted((s["scrap_qty"], s["state"], bool(s["production_id"])) for s in scraps)
        assert found == [(1, "done", False), (2, "done", True), (3, "done", True)], scraps
        assert (await on_hand(r.x, line.bolt))["qty_available"] == 1000 - 6


@VERSIONS
async def test_operations_log_plant_floor_times(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        x = r.x
        finished = await storable(x, "Gearbox", code="GBX")
        part = await storable(x, "Shaft", code="SHAFT")
        await count_stock(x, part, 100)
        workcenter = await x("mrp.workcenter", "create", {"name": "Assembly", "code": "A1"})
        template = (await r.read("product.product", [finished], "product_tmpl_id"))[0]
        bom_id = await x(
            "mrp.bom",
            "create",
            {
                "product_tmpl_id": template["product_tmpl_id"][0],
                "product_qty": 1,
                "consumption": "flexible",
                "bom_line_ids": [[0, 0, {"product_id": part, "product_qty": 1}]],
                "operation_ids": [
                    [
                        0,
                        0,
                        {"name": "Assemble", "workcenter_id": workcenter, "time_cycle_manual": 15},
                    ],
                ],
            },
        )
        mo = await x(
            "mrp.production", "create", {"product_id": finished, "product_qty": 2, "bom_id": bom_id}
        )
        await x("mrp.production", "action_confirm", [mo])
        name = (await _mo(r, mo))["name"]
        p = r.plant
        started = p.event("operation.started", order=name, operation="Assemble")
        paused = p.event("operation.paused", order=name, workcenter="Assembly")
        again = p.event("operation.started", order=name, operation="Assemble")
        produced = p.event("production.reported", order=name, qty=2)
        finished_ev = p.event("operation.finished", order=name, operation="Assemble")
        done = p.event("order.completed", order=name, backorder=False)
        await r.send(started, paused, again, produced, finished_ev, done)
        await r.settle()
        wo = (await r.search_read("mrp.workorder", [["production_id", "=", mo]], "state"))[0]
        assert wo["state"] == "done"
        logs = await r.search_read(
            "mrp.workcenter.productivity",
            [["workorder_id", "=", wo["id"]]],
            "date_start",
            "date_end",
        )
        spans = sorted((log["date_start"], log["date_end"]) for log in logs)
        fmt = "%Y-%m-%d %H:%M:%S"
        assert spans == [
            (started.occurred_at.strftime(fmt), paused.occurred_at.strftime(fmt)),
            (again.occurred_at.strftime(fmt), finished_ev.occurred_at.strftime(fmt)),
        ]
        assert (await _mo(r, mo))["state"] == "done"


@VERSIONS
async def test_inventory_count_is_applied(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        p = r.plant
        await r.send(
            p.event("inventory.counted", product="BOLT", location="WH/Stock", qty=700),
            p.event("inventory.counted", product="BOLT", location="WH/Stock", qty=650),
        )
        await r.settle()
        if version == 17:
            # Odoo 17 lets only a stock manager apply a count; the connector is a stock user.
            dead = await r.store.list_dead_letters()
            assert len(dead) == 2
            assert "Only a stock manager can validate an inventory adjustment" in dead[0].error
            assert (await on_hand(r.x, line.bolt))["qty_available"] == 1000
        else:
            assert (await on_hand(r.x, line.bolt))["qty_available"] == 650


async def test_writer_figures_reach_prometheus(tmp_path: Path) -> None:
    async with rig(tmp_path, 18) as r:
        metrics = RelayMetrics()
        metrics.watch_writer(r.writer.stats)
        line = await r.line()
        _, name = await r.mo(line, 10)
        p = r.plant
        await r.send(*(p.event("production.reported", order=name, qty=1) for _ in range(3)))
        await r.settle()
        text = generate_latest(metrics.registry).decode()
        assert "cloud_relay_writer_events_posted_total 3.0" in text
        assert 'cloud_relay_writer_state{state="posting"} 1.0' in text
        assert "cloud_relay_writer_dead_letters 0.0" in text
        assert "cloud_relay_writer_odoo_calls_total" in text
