"""Work orders and their time logs, with the server clock under the test's control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import httpx
import pytest

from cloud_relay.odoo.sandbox import running_sandbox
from tests.cloud_relay.odoo.sandbox.scenario import (
    ADMIN_UID,
    Odoo,
    OdooFault,
    Rpc,
    bom,
    confirmed_mo,
    count_stock,
    mo_state,
    raw_moves,
    storable,
)


class Clock:
    """A server clock that only moves when the test says so."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 8, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


@pytest.fixture
async def timed() -> AsyncIterator[tuple[Odoo, Clock]]:
    clock = Clock()
    async with (
        running_sandbox(18, clock=clock) as handle,
        httpx.AsyncClient(base_url=handle.base_url) as http,
    ):
        admin = Rpc(http, handle.database, ADMIN_UID, handle.info.admin_api_key)
        yield Odoo(handle, http, admin, admin.as_user(handle.info.uid, handle.api_key)), clock


async def _pump_mo(x: Rpc, quantity: float) -> tuple[int, list[int]]:
    product = await storable(x, "Pump")
    impeller = await storable(x, "Impeller")
    await count_stock(x, impeller, 100)
    center = await x("mrp.workcenter", "create", {"name": "Assembly", "code": "A1"})
    bom_id = await bom(
        x,
        product,
        [(impeller, 1)],
        consumption="flexible",
        operation_ids=[
            [
                0,
                0,
                {
                    "name": "Assemble",
                    "workcenter_id": center,
                    "time_cycle_manual": 15,
                    "time_mode": "manual",
                    "sequence": 10,
                },
            ],
            [
                0,
                0,
                {
                    "name": "Test",
                    "workcenter_id": center,
                    "time_cycle_manual": 5,
                    "time_mode": "manual",
                    "sequence": 20,
                },
            ],
        ],
    )
    mo = await confirmed_mo(x, product, quantity, bom_id)
    orders: list[int] = await x("mrp.workorder", "search", [["production_id", "=", mo]])
    return mo, orders


async def test_start_pause_finish_log_time(timed: tuple[Odoo, Clock]) -> None:
    odoo, clock = timed
    x = odoo.connector
    mo, (first, second) = await _pump_mo(odoo.x, 3)
    assert await x("mrp.workorder", "button_start", [first]) is None
    assert (await mo_state(x, mo))["qty_producing"] == 3.0
    clock.advance(12)
    assert await x("mrp.workorder", "button_pending", [first]) is None
    paused = await x(
        "mrp.workorder", "read", [first], fields=["state", "duration", "is_user_working"]
    )
    assert paused[0] | {"id": 0} == {
        "id": 0,
        "state": "progress",
        "duration": 12.0,
        "is_user_working": False,
    }
    await x("mrp.workorder", "button_start", [first])
    with pytest.raises(OdooFault, match="cannot be started twice"):
        await x(
            "mrp.workcenter.productivity",
            "create",
            {
                "workorder_id": first,
                "workcenter_id": 1,
                "loss_id": 7,
            },
        )
    clock.advance(30)
    assert await x("mrp.workorder", "button_finish", [first]) is True
    logs = await x(
        "mrp.workcenter.productivity",
        "search_read",
        [["workorder_id", "=", first]],
        fields=["date_start", "date_end", "duration", "loss_id", "user_id"],
        order="id",
    )
    assert [(log["duration"], log["loss_id"][1], log["user_id"][0]) for log in logs] == [
        (12.0, "Fully Productive Time", odoo.handle.info.uid),
        (30.0, "Fully Productive Time", odoo.handle.info.uid),
    ]
    assert logs[0]["date_start"] == "2026-01-05 08:00:00"
    rows = await x(
        "mrp.workorder", "read", [first, second], fields=["state", "duration", "qty_produced"]
    )
    assert [(r["state"], r["duration"], r["qty_produced"]) for r in rows] == [
        ("done", 42.0, 3.0),
        ("ready", 0.0, 0.0),
    ]
    with pytest.raises(OdooFault, match="already done or cancelled"):
        await x("mrp.workorder", "button_start", [first])


async def test_zero_duration_becomes_the_expected_one_at_mark_done(
    timed: tuple[Odoo, Clock],
) -> None:
    odoo, _ = timed
    x = odoo.connector
    mo, (first, second) = await _pump_mo(odoo.x, 3)
    await x("mrp.workorder", "button_start", [first])
    await x("mrp.workorder", "button_finish", [first])
    await x("mrp.workorder", "write", [second], {"qty_producing": 2})
    moves = await raw_moves(x, mo)
    assert [(m["quantity"], m["picked"]) for m in moves] == [(2.0, True)]
    await x("mrp.workorder", "button_start", [second])
    await x("mrp.workorder", "button_finish", [second])
    state = await mo_state(x, mo)
    assert (state["state"], state["qty_producing"]) == ("to_close", 2.0)
    action = await x("mrp.production", "button_mark_done", [mo])
    wizard = await x(
        "mrp.production.backorder",
        "create",
        {
            "mrp_production_ids": [[6, 0, [mo]]],
            "mrp_production_backorder_line_ids": action["context"][
                "default_mrp_production_backorder_line_ids"
            ],
        },
    )
    assert await x("mrp.production.backorder", "action_close_mo", [wizard]) is True
    rows = await x("mrp.workorder", "read", [first, second], fields=["duration"])
    assert [r["duration"] for r in rows] == [45.0, 10.0]


async def test_explicit_time_logs_carry_plant_floor_times(timed: tuple[Odoo, Clock]) -> None:
    odoo, _ = timed
    _, (first, _) = await _pump_mo(odoo.x, 1)
    log = await odoo.connector(
        "mrp.workcenter.productivity",
        "create",
        {
            "workorder_id": first,
            "workcenter_id": 1,
            "loss_id": 7,
            "date_start": "2026-01-05 06:00:00",
            "date_end": "2026-01-05 06:45:30",
            "description": "EVT-7",
        },
    )
    rows = await odoo.connector(
        "mrp.workcenter.productivity",
        "search_read",
        [["description", "=", "EVT-7"]],
        fields=["duration"],
    )
    assert rows == [{"id": log, "duration": 45.5}]
