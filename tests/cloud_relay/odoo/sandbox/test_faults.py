"""Fault injection (in-process and over the sandbox-only HTTP routes) and call counting."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from cloud_relay.odoo.sandbox import FaultRule
from tests.cloud_relay.odoo.sandbox.scenario import Odoo, OdooFault, Rpc, storable

BOUND_SECONDS = 10.0


async def _count(odoo: Odoo, name: str) -> int:
    found: int = await odoo.x("product.product", "search_count", [["name", "=", name]])
    return found


async def test_http_status_for_the_next_calls_of_one_method(odoo18: Odoo) -> None:
    rule = {
        "kind": "http_status",
        "status": 503,
        "times": 2,
        "model": "product.product",
        "method": "search_read",
    }
    created = await odoo18.http.post("/sandbox/faults", json=rule)
    assert created.status_code == 201
    payload = {
        "jsonrpc": "2.0",
        "method": "call",
        "id": 1,
        "params": {
            "service": "object",
            "method": "execute_kw",
            "args": ["plant", 2, odoo18.x.secret, "product.product", "search_read", [[]], {}],
        },
    }
    statuses = [(await odoo18.http.post("/jsonrpc", json=payload)).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    assert await odoo18.x("product.product", "search_count", []) == 0
    calls = (await odoo18.http.get("/sandbox/calls")).json()
    assert calls["calls"]["product.product.search_read"] == 3
    assert calls["calls"]["product.product.search_count"] == 1
    assert (await odoo18.http.get("/sandbox/faults")).json() == {"rules": []}
    reset = await odoo18.http.delete("/sandbox/calls")
    assert reset.json() == {"total": 0, "calls": {}}


async def test_serialization_conflicts_are_retried_and_applied_once(odoo18: Odoo) -> None:
    odoo18.handle.faults.add(FaultRule(kind="serialization_failure", conflicts=4, times=1))
    await storable(odoo18.x, "Retried")
    assert await _count(odoo18, "Retried") == 1


async def test_serialization_failure_after_five_tries_changes_nothing(odoo18: Odoo) -> None:
    odoo18.handle.faults.add(
        FaultRule(kind="serialization_failure", times=1, model="product.product", method="create")
    )
    with pytest.raises(OdooFault) as caught:
        await storable(odoo18.x, "Lost")
    assert caught.value.name == "psycopg2.errors.SerializationFailure"
    assert caught.value.message == "could not serialize access due to concurrent update\n"
    assert caught.value.body["error"]["code"] == 200
    assert await _count(odoo18, "Lost") == 0
    await storable(odoo18.x, "Lost")
    assert await _count(odoo18, "Lost") == 1


async def test_serialization_failure_on_json2_is_a_500(odoo19: Odoo) -> None:
    odoo19.handle.faults.add(FaultRule(kind="serialization_failure", times=1))
    response = await odoo19.http.post(
        "/json/2/product.product/search_count",
        json={"domain": []},
        headers={"Authorization": f"Bearer {odoo19.handle.info.admin_api_key}"},
    )
    assert response.status_code == 500
    assert response.json()["name"] == "psycopg2.errors.SerializationFailure"


async def test_injected_odoo_error(odoo18: Odoo) -> None:
    rule = {
        "kind": "odoo_error",
        "error_name": "odoo.exceptions.ValidationError",
        "error_message": "injected",
        "model": "res.users",
        "times": 1,
    }
    assert (await odoo18.http.post("/sandbox/faults", json=rule)).status_code == 201
    with pytest.raises(OdooFault) as caught:
        await odoo18.x("res.users", "read", [2], fields=["login"])
    assert (caught.value.name, caught.value.message) == (
        "odoo.exceptions.ValidationError",
        "injected",
    )
    assert await odoo18.x("res.users", "read", [2], fields=["login"]) == [
        {"id": 2, "login": "admin"}
    ]


async def test_slow_calls_do_not_hold_up_others(odoo18: Odoo) -> None:
    odoo18.handle.faults.add(FaultRule(kind="delay", delay_seconds=1.0, model="res.users", times=1))
    slow = asyncio.create_task(odoo18.x("res.users", "read", [2], fields=["login"]))
    for _ in range(1000):
        if odoo18.handle.faults.calls().get("res.users.read", 0):
            break
        await asyncio.sleep(0.01)
    assert await odoo18.x("product.product", "search_count", []) == 0
    assert not slow.done()
    assert await asyncio.wait_for(slow, BOUND_SECONDS) == [{"id": 2, "login": "admin"}]


async def test_invalid_fault_is_refused(odoo18: Odoo) -> None:
    response = await odoo18.http.post("/sandbox/faults", json={"kind": "meteor"})
    assert response.status_code == 422
    with pytest.raises(ValueError, match="refuse_for"):
        odoo18.handle.faults.add(FaultRule(kind="refuse_connections"))
    odoo18.handle.faults.add(FaultRule(kind="delay", delay_seconds=0.0))
    listed = (await odoo18.http.get("/sandbox/faults")).json()["rules"]
    assert [(r["kind"], r["remaining"]) for r in listed] == [("delay", None)]
    assert (await odoo18.http.delete("/sandbox/faults")).json() == {"rules": []}


async def _wait_until_refused(base_url: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND_SECONDS
    while True:
        try:
            async with httpx.AsyncClient(base_url=base_url) as fresh:
                await fresh.get("/sandbox/calls")
        except httpx.ConnectError:
            return
        except httpx.RemoteProtocolError:
            pass  # accepted just as the listener closed: the refusal is still starting
        assert loop.time() < deadline, "still accepting connections"
        await asyncio.sleep(0.02)


async def _wait_until_accepting(base_url: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND_SECONDS
    while True:
        try:
            async with httpx.AsyncClient(base_url=base_url) as fresh:
                await fresh.get("/sandbox/calls")
            return
        except httpx.ConnectError:
            assert loop.time() < deadline, "not accepting connections again"
            await asyncio.sleep(0.02)


async def test_refusing_connections_over_http_keeps_the_data(odoo18: Odoo) -> None:
    product = await storable(odoo18.x, "Kept")
    response = await odoo18.http.post(
        "/sandbox/faults", json={"kind": "refuse_connections", "seconds": 0.5}
    )
    assert response.status_code == 202
    await _wait_until_refused(odoo18.handle.base_url)
    await _wait_until_accepting(odoo18.handle.base_url)
    async with httpx.AsyncClient(base_url=odoo18.handle.base_url) as fresh:
        rpc = Rpc(fresh, odoo18.x.database, odoo18.x.uid, odoo18.x.secret)
        assert await rpc("product.product", "search", [["name", "=", "Kept"]]) == [product]
    assert odoo18.handle.server.stats().refusals == 1


async def test_stopping_and_restarting_in_process(odoo18: Odoo) -> None:
    server = odoo18.handle.server
    await server.stop()
    assert not server.stats().listening
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=server.base_url) as fresh:
            await fresh.get("/sandbox/calls")
    await server.start()
    async with httpx.AsyncClient(base_url=server.base_url) as fresh:
        assert (await fresh.get("/sandbox/calls")).status_code == 200
