"""The HTTP surface: ``serve_sandbox``, ``/jsonrpc`` framing, JSON-2 (19) and its absence."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx

from cloud_relay.odoo.sandbox import SandboxInfo, serve_sandbox
from tests.cloud_relay.odoo.sandbox.scenario import Odoo, storable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_serve_sandbox_until_cancelled() -> None:
    ready: asyncio.Queue[tuple[SandboxInfo, str]] = asyncio.Queue()
    port = _free_port()
    task = asyncio.create_task(
        serve_sandbox(
            f"127.0.0.1:{port}",
            17,
            backoff_scale=0.0,
            on_ready=lambda info, url: ready.put_nowait((info, url)),
        )
    )
    info, url = await asyncio.wait_for(ready.get(), 10)
    assert url == f"http://127.0.0.1:{port}"
    assert (info.odoo_version, info.database, info.admin_login) == (17, "plant", "admin")
    async with httpx.AsyncClient(base_url=url) as http:
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": 9,
            "params": {
                "service": "common",
                "method": "authenticate",
                "args": ["plant", info.login, info.api_key, {}],
            },
        }
        answer = (await http.post("/jsonrpc", json=body)).json()
        assert answer == {"jsonrpc": "2.0", "id": 9, "result": info.uid}
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    async with httpx.AsyncClient(base_url=url) as http:
        try:
            await http.get("/sandbox/calls")
        except httpx.ConnectError:
            pass
        else:
            raise AssertionError("still serving after cancellation")


async def test_jsonrpc_framing(odoo18: Odoo) -> None:
    bad = await odoo18.http.post(
        "/jsonrpc", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert (bad.status_code, bad.text) == (400, "Invalid JSON data")
    array = await odoo18.http.post("/jsonrpc", json=[1, 2])
    assert (array.status_code, array.text) == (400, "Invalid JSON-RPC data")
    wrong_db = await odoo18.x.raw("common", "authenticate", "nope", "admin", "admin", {})
    assert wrong_db["error"]["data"]["name"] == "psycopg2.OperationalError"
    unknown = await odoo18.x.raw(
        "object", "execute_kw", "plant", 2, odoo18.x.secret, "mrp.nosuchmodel", "search", [[]], {}
    )
    assert unknown["error"]["data"]["message"] == "Object mrp.nosuchmodel doesn't exist"


async def test_json2_only_in_19(odoo: Odoo) -> None:
    response = await odoo.http.post("/json/2/product.product/search_read", json={})
    if odoo.version == 19:
        assert response.status_code == 401
    elif odoo.version == 18:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/web/login?redirect=")
    else:
        assert response.status_code == 404


async def _json2(
    odoo: Odoo, path: str, body: Any, key: str | None = None, **headers: str
) -> httpx.Response:
    token = key if key is not None else odoo.handle.api_key
    if token:
        headers["Authorization"] = f"bearer {token}"
    return await odoo.http.post(f"/json/2/{path}", json=body, headers=headers)


async def test_json2_calls(odoo19: Odoo) -> None:
    product = await storable(odoo19.x, "Widget", code="W-1")
    created = await _json2(
        odoo19, "stock.lot/create", {"vals_list": {"name": "L1", "product_id": product}}
    )
    assert created.status_code == 200 and len(created.json()) == 1
    found = await _json2(
        odoo19,
        "product.product/search_read",
        {"domain": [["default_code", "=", "W-1"]], "fields": ["name"]},
        **{"X-Odoo-Database": "plant"},
    )
    assert found.json() == [{"id": product, "name": "Widget"}]
    read = await _json2(odoo19, "product.product/read", {"ids": [product], "fields": ["name"]})
    assert read.json() == [{"id": product, "name": "Widget"}]
    versions = (await odoo19.http.get("/web/version")).json()
    assert versions["version"] == "19.0"


async def test_json2_errors(odoo19: Odoo) -> None:
    bad_key = await _json2(odoo19, "product.product/search", {"domain": []}, key="nope")
    assert bad_key.status_code == 401
    assert bad_key.headers["www-authenticate"] == "bearer"
    assert bad_key.json()["name"] == "werkzeug.exceptions.Unauthorized"
    no_key = await _json2(odoo19, "product.product/search", {"domain": []}, key="")
    assert no_key.status_code == 401
    model = await _json2(odoo19, "no.model/search", {"domain": []})
    assert (model.status_code, model.json()["message"]) == (
        404,
        "the model 'no.model' does not exist",
    )
    assert (await _json2(odoo19, "product.product/nope", {})).status_code == 404
    private = await _json2(odoo19, "res.users.apikeys/_generate", {})
    assert (private.status_code, private.json()["name"]) == (403, "odoo.exceptions.AccessError")
    ids = await _json2(odoo19, "product.product/search", {"ids": [1], "domain": []})
    assert (ids.status_code, ids.json()["message"]) == (
        422,
        "cannot call product.product.search with ids",
    )
    kwargs = await _json2(odoo19, "product.product/search", {"nonsense": 1})
    assert kwargs.status_code == 422
    missing = await _json2(odoo19, "mrp.production/action_confirm", {"ids": [987654321]})
    assert (missing.status_code, missing.json()["name"]) == (404, "odoo.exceptions.MissingError")
    denied = await _json2(odoo19, "mrp.bom/create", {"vals_list": [{}]})
    assert (denied.status_code, denied.json()["name"]) == (403, "odoo.exceptions.AccessError")
    user_error = await _json2(odoo19, "res.users.apikeys.description/make_key", {"ids": []})
    assert user_error.status_code == 422
    wrong_db = await _json2(
        odoo19, "product.product/search", {"domain": []}, **{"X-Odoo-Database": "other"}
    )
    assert wrong_db.status_code == 404
    catch_all = await _json2(odoo19, "too/many/parts", {})
    assert (catch_all.status_code, catch_all.json()["message"]) == (
        404,
        "Did you mean POST /json/2/<model>/<method>?",
    )


async def test_json2_none_result_is_null(odoo19: Odoo) -> None:
    product = await storable(odoo19.x, "Paint")
    quant = (
        await _json2(
            odoo19,
            "stock.quant/create",
            {
                "vals_list": [{"product_id": product, "location_id": 8, "inventory_quantity": 4}],
                "context": {"inventory_mode": True},
            },
        )
    ).json()
    applied = await _json2(odoo19, "stock.quant/action_apply_inventory", {"ids": quant})
    assert (applied.status_code, applied.text) == (200, "null")
