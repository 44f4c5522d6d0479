"""What Odoo refuses: parking, patience, dead letters, replay after the cause is fixed; and what
fails for a while (Odoo down, 5xx, serialization failures) losing and doubling nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from cloud_relay.odoo.sandbox.faults import FaultRule
from cloud_relay.odoo.sandbox.server import SandboxServer
from tests.cloud_relay.odoo.sandbox.scenario import count_stock, on_hand, storable
from tests.cloud_relay.posting.harness import FAST, Rig, eventually, needs_sandbox, rig

pytestmark = pytest.mark.timeout(90)
VERSIONS = pytest.mark.parametrize("version", [17, 18, 19], ids=lambda v: f"odoo{v}")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def _dead(r: Rig, count: int) -> list[str]:
    async def enough() -> bool:
        return len(await r.store.list_dead_letters()) >= count

    await eventually(enough, what=f"{count} dead letters")
    return [d.error for d in await r.store.list_dead_letters()]


async def _replay_all(r: Rig) -> None:
    ids = [d.id for d in await r.store.list_dead_letters()]
    assert await r.store.replay(ids, "tester", "cause fixed", NOW) == ids
    r.writer.wake()


@VERSIONS
async def test_order_created_in_odoo_after_its_first_events(tmp_path: Path, version: int) -> None:
    patient = FAST.model_copy(update={"patience_seconds": 600})
    async with rig(tmp_path, version, patient) as r:
        line = await r.line()
        p = r.plant
        name = "LINE7/MO/0001"
        await r.send(
            p.event("production.reported", order=name, qty=2),
            p.event("production.reported", order=name, qty=3),
        )

        async def parked() -> bool:
            return bool(await r.store.parked_orders())

        await eventually(parked, what="the order parked")
        state = (await r.store.parked_orders())[0]
        assert state.park_reason is not None
        assert "no manufacturing order named 'LINE7/MO/0001'" in state.park_reason
        # Odoo keeps a name the client gives at create (a real Odoo has demo orders WH/MO/...).
        mo = await r.x(
            "mrp.production",
            "create",
            {"name": name, "product_id": line.finished, "product_qty": 10, "bom_id": line.bom},
        )
        await r.x("mrp.production", "action_confirm", [mo])
        await r.settle()
        rows = await r.read("mrp.production", [mo], "qty_producing")
        assert rows[0]["qty_producing"] == 5
        assert not await r.store.list_dead_letters()


@VERSIONS
async def test_unknown_product_is_dead_lettered_then_replayed(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        mo, name = await r.mo(line, 10)
        p = r.plant
        await r.send(
            p.event("material.consumed", order=name, product="BOLT", qty=2),
            p.event("material.consumed", order=name, product="GLUE", qty=1.5),
            p.event("material.consumed", order=name, product="BOLT", qty=2),
        )
        errors = await _dead(r, 1)
        assert "no product in Odoo has the internal reference 'GLUE'" in errors[0]
        await r.settle()
        # The order went on past the dead letter: the other events are in Odoo.
        moves = await r.search_read(
            "stock.move",
            [["raw_material_production_id", "=", mo]],
            "product_id",
            "quantity",
            "picked",
        )
        assert [m["quantity"] for m in moves if m["product_id"][0] == line.bolt] == [4]

        glue = await storable(r.x, "Glue", code="GLUE")
        await count_stock(r.x, glue, 10)
        await _replay_all(r)
        await r.settle()
        moves = await r.search_read(
            "stock.move",
            [["raw_material_production_id", "=", mo]],
            "product_id",
            "quantity",
            "picked",
        )
        assert [(m["quantity"], m["picked"]) for m in moves if m["product_id"][0] == glue] == [
            (1.5, True)
        ]
        assert not await r.store.list_dead_letters()
        audit = await r.store.audit_log()
        assert [(a.action, a.actor, a.reason) for a in audit] == [
            ("replay", "tester", "cause fixed")
        ]


@VERSIONS
async def test_quantity_changed_by_hand_parks_the_order_not_the_others(
    tmp_path: Path, version: int
) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        mo, name = await r.mo(line, 10)
        other, other_name = await r.mo(line, 10)
        p = r.plant
        await r.send(p.event("production.reported", order=name, qty=3))
        await r.settle()
        await r.x("mrp.production", "write", [mo], {"qty_producing": 7})  # a supervisor
        await r.send(
            p.event("production.reported", order=name, qty=1),
            p.event("production.reported", order=other_name, qty=2),
        )
        errors = await _dead(r, 1)
        assert "quantity producing in Odoo is 7, the relay last wrote 3" in errors[0]
        await r.settle()
        assert (await r.read("mrp.production", [mo], "qty_producing"))[0]["qty_producing"] == 7
        assert (await r.read("mrp.production", [other], "qty_producing"))[0]["qty_producing"] == 2

        # The supervisor's change is undone in Odoo; the replayed event then applies.
        await r.x("mrp.production", "write", [mo], {"qty_producing": 3})
        await _replay_all(r)
        await r.settle()
        assert (await r.read("mrp.production", [mo], "qty_producing"))[0]["qty_producing"] == 4


@VERSIONS
async def test_cancelled_and_closed_orders_are_refused_with_a_reason(
    tmp_path: Path, version: int
) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        cancelled, cancelled_name = await r.mo(line, 10)
        await r.x("mrp.production", "action_cancel", [cancelled])
        p = r.plant
        await r.send(p.event("production.reported", order=cancelled_name, qty=1))
        errors = await _dead(r, 1)
        assert f"manufacturing order {cancelled_name} was cancelled in Odoo" in errors[0]

        closed, closed_name = await r.mo(line, 10)
        lot = await r.x("stock.lot", "create", {"name": "RES-A", "product_id": line.lotted})
        await count_stock(r.x, line.lotted, 20, lot=lot)
        await r.send(
            p.event("production.reported", order=closed_name, qty=10, lot="W-1"),
            p.event("material.consumed", order=closed_name, product="BOLT", qty=20),
            p.event("material.consumed", order=closed_name, product="RESIN", qty=10, lot="RES-A"),
            p.event("order.completed", order=closed_name, backorder=False),
            p.event("production.reported", order=closed_name, qty=1),
        )
        errors = await _dead(r, 2)
        assert "already completed by an earlier order.completed" in errors[1]
        state = await r.read("mrp.production", [closed], "state", "qty_produced")
        assert (state[0]["state"], state[0]["qty_produced"]) == ("done", 10)


@VERSIONS
async def test_odoo_failures_lose_and_double_nothing(tmp_path: Path, version: int) -> None:
    needs_sandbox()
    async with rig(tmp_path, version) as r:
        line = await r.line()
        mo, name = await r.mo(line, 100)
        faults = r.odoo.faults
        p = r.plant
        expected = 0.0
        for round_no in range(6):
            kind = ["http_status", "serialization_failure", "refuse_connections"][round_no % 3]
            if kind == "refuse_connections":
                server = r.odoo.server
                await server.refuse_for(0.3)

                async def refusing(server: SandboxServer = server) -> bool:
                    return not server.listening

                await eventually(refusing, what="the sandbox to stop listening")
            else:
                faults.add(FaultRule(kind=kind, model="mrp.production", method="write", times=2))
            events = [
                p.event("production.reported", order=name, qty=1),
                p.event("material.consumed", order=name, product="BOLT", qty=2),
                p.event("scrap.reported", order=name, product="BOLT", qty=1),
            ]
            expected += 1
            await r.send(*events)
            await r.settle()
        faults.clear()
        state = await r.read("mrp.production", [mo], "qty_producing")
        assert state[0]["qty_producing"] == expected
        scraps = await r.search_read("stock.scrap", [["production_id", "=", mo]], "state")
        assert len(scraps) == 6 and {s["state"] for s in scraps} == {"done"}
        assert (await on_hand(r.x, line.bolt))["qty_available"] == 1000 - 6
        assert not await r.store.list_dead_letters()
        assert r.writer.stats().transient_errors > 0


async def test_writer_uses_few_calls_for_a_backlog(tmp_path: Path) -> None:
    needs_sandbox()
    async with rig(tmp_path, 18, FAST, start=False) as r:
        line = await r.line()
        orders = [await r.mo(line, 1000) for _ in range(4)]
        p = r.plant
        events = []
        for i in range(400):
            _, name = orders[i % 4]
            events.append(p.event("production.reported", order=name, qty=1))
            events.append(p.event("material.consumed", order=name, product="BOLT", qty=2))
        await r.send(*events)
        r.odoo.faults.reset_calls()
        import asyncio

        r.task = asyncio.create_task(r.writer.run())
        await r.settle()
        calls = sum(r.odoo.faults.calls().values())
        assert calls / len(events) <= 0.2, (calls, r.odoo.faults.calls())
        for mo, _ in orders:
            state = await r.read("mrp.production", [mo], "qty_producing")
            assert state[0]["qty_producing"] == 100


@VERSIONS
async def test_unknown_component_lot_waits_for_the_lot(tmp_path: Path, version: int) -> None:
    async with rig(tmp_path, version) as r:
        line = await r.line()
        mo, name = await r.mo(line, 10)
        p = r.plant
        await r.send(
            p.event("material.consumed", order=name, product="RESIN", qty=2, lot="RES-NEW"),
            p.event("material.consumed", order=name, product="RESIN", qty=1),
        )
        errors = await _dead(r, 2)
        assert "product 'RESIN' has no lot 'RES-NEW' in Odoo" in errors[0]
        assert "tracked by lot in Odoo: material.consumed needs a lot" in errors[1]
        await r.settle()

        lot = await r.x("stock.lot", "create", {"name": "RES-NEW", "product_id": line.lotted})
        await count_stock(r.x, line.lotted, 5, lot=lot)
        dead = await r.store.list_dead_letters()
        assert await r.store.replay([dead[0].id], "tester", "lot received", NOW) == [dead[0].id]
        assert await r.store.discard(dead[1].id, "tester", "duplicate without lot", NOW)
        r.writer.wake()
        await r.settle()
        moves = await r.search_read(
            "stock.move",
            [["raw_material_production_id", "=", mo], ["product_id", "=", line.lotted]],
            "move_line_ids",
        )
        lines = await r.search_read(
            "stock.move.line", [["move_id", "=", moves[0]["id"]]], "lot_id", "quantity", "picked"
        )
        assert [(ln["lot_id"][0], ln["quantity"], ln["picked"]) for ln in lines] == [(lot, 2, True)]
        assert [a.action for a in await r.store.audit_log()] == ["discard", "replay"]
