"""The two wire protocols: envelopes as a real Odoo 18.0 sent them, and calls to the sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloud_relay.odoo.errors import (
    OdooAccessDenied,
    OdooAccessError,
    OdooCallError,
    OdooConcurrencyError,
    OdooConfigError,
    OdooMissingError,
    OdooUnavailableError,
    OdooUserError,
)
from cloud_relay.odoo.rpc import (
    Json2,
    JsonRpc,
    ServerVersion,
    detect_version,
    json2_body,
    parse_json2_response,
    parse_jsonrpc_response,
    transport_for,
    version_from_info,
)
from cloud_relay.odoo.sandbox import SandboxHandle, running_sandbox

JSON = {"content-type": "application/json; charset=utf-8"}
REQUEST = httpx.Request("POST", "http://odoo.test/jsonrpc")


def answer(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.Response(status, headers=headers or JSON, content=content, request=REQUEST)


def odoo_error(name: str, message: str) -> dict[str, Any]:
    """An ``error`` member as Odoo 18.0 answered it (HTTP 200, code 200)."""
    return {
        "code": 200,
        "message": "Odoo Server Error",
        "data": {
            "name": name,
            "debug": f"Traceback (most recent call last):\n  ...\n{name}: {message}\n",
            "message": message,
            "arguments": [message],
            "context": {},
        },
    }


# -- JSON-RPC envelopes -------------------------------------------------------------------------


def test_result_left_out_means_none() -> None:
    # mrp.production.set_qty_producing on Odoo 18.0 answered exactly this.
    assert parse_jsonrpc_response(answer(200, {"jsonrpc": "2.0", "id": 20}), call="x") is None


@pytest.mark.parametrize("result", [False, 0, [], {}, 2, [15, 16]])
def test_result_is_returned_as_sent(result: Any) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "result": result}
    assert parse_jsonrpc_response(answer(200, body), call="x") == result


def test_error_envelope_with_http_200_is_sorted() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 25,
        "error": odoo_error("odoo.exceptions.UserError", "You can only enter positive quantities."),
    }
    with pytest.raises(OdooUserError) as caught:
        parse_jsonrpc_response(answer(200, body), call="stock.scrap.action_validate")
    assert str(caught.value) == (
        "stock.scrap.action_validate: odoo.exceptions.UserError: "
        "You can only enter positive quantities."
    )


def test_error_without_data_keeps_code_and_message() -> None:
    body = {"jsonrpc": "2.0", "id": 1, "error": {"code": 100, "message": "Odoo Session Expired"}}
    with pytest.raises(OdooCallError, match="JSON-RPC error 100: Odoo Session Expired"):
        parse_jsonrpc_response(answer(200, body), call="x")


def test_odoo_400_text_is_not_taken_for_an_envelope() -> None:
    # What Odoo 18.0 answers to a body that is not JSON.
    response = answer(400, b"Invalid JSON data", {"content-type": "text/html; charset=utf-8"})
    with pytest.raises(OdooConfigError, match="HTTP 400"):
        parse_jsonrpc_response(response, call="x")


def test_proxy_page_502_may_have_applied() -> None:
    response = answer(502, b"<html>Bad Gateway</html>", {"content-type": "text/html"})
    with pytest.raises(OdooUnavailableError) as caught:
        parse_jsonrpc_response(response, call="mrp.production.button_mark_done")
    assert caught.value.may_have_applied is True


def test_html_with_200_is_a_wrong_url() -> None:
    response = answer(200, b"<html>login</html>", {"content-type": "text/html"})
    with pytest.raises(OdooConfigError, match="did not answer a JSON-RPC object"):
        parse_jsonrpc_response(response, call="x")


# -- JSON-2 envelopes ---------------------------------------------------------------------------


def bare(name: str, message: str) -> dict[str, Any]:
    return {"name": name, "message": message, "arguments": [message], "context": {}, "debug": ""}


def test_json2_null_body_means_none() -> None:
    assert parse_json2_response(answer(200, None), call="x") is None


@pytest.mark.parametrize(
    ("status", "name", "expected"),
    [
        (401, "werkzeug.exceptions.Unauthorized", OdooAccessDenied),
        (403, "odoo.exceptions.AccessError", OdooAccessError),
        (404, "odoo.exceptions.MissingError", OdooMissingError),
        (422, "odoo.exceptions.UserError", OdooUserError),
        (500, "psycopg2.errors.SerializationFailure", OdooConcurrencyError),
    ],
)
def test_json2_status_and_bare_error(status: int, name: str, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        parse_json2_response(answer(status, bare(name, "text")), call="x")


def test_json2_redirect_to_login_means_no_json2() -> None:
    # Odoo 18.0 answers /json/2/... with this redirect.
    response = answer(
        303,
        b"<!doctype html>\n<title>Redirecting...</title>",
        {
            "content-type": "text/html; charset=utf-8",
            "location": "/web/login?redirect=%2Fjson%2F2%2Fres.users%2Fsearch_read%3F",
        },
    )
    with pytest.raises(OdooConfigError, match="JSON-2 needs Odoo 19"):
        parse_json2_response(response, call="res.users.search_read")


def test_json2_proxy_503_certainly_did_not_apply() -> None:
    response = answer(503, b"Service Unavailable", {"content-type": "text/plain"})
    with pytest.raises(OdooUnavailableError) as caught:
        parse_json2_response(response, call="x")
    assert caught.value.may_have_applied is False


# -- naming arguments for JSON-2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "body"),
    [
        ("create", [{"name": "x"}], {}, {"vals_list": [{"name": "x"}]}),
        (
            "create",
            [[{"name": "x"}, {"name": "y"}]],
            {},
            {"vals_list": [{"name": "x"}, {"name": "y"}]},
        ),
        (
            "write",
            [[4, 5], {"qty_producing": 2}],
            {},
            {"ids": [4, 5], "vals": {"qty_producing": 2}},
        ),
        (
            "search_read",
            [[["state", "=", "done"]]],
            {"fields": ["name"], "limit": 1},
            {"domain": [["state", "=", "done"]], "fields": ["name"], "limit": 1},
        ),
        ("read", [[7], ["name"]], {}, {"ids": [7], "fields": ["name"]}),
        ("action_confirm", [[66]], {}, {"ids": [66]}),
        (
            "button_mark_done",
            [66],
            {"context": {"skip_backorder": True}},
            {"ids": [66], "context": {"skip_backorder": True}},
        ),
        (
            "check_object_reference",
            ["stock", "warehouse0"],
            {},
            {"module": "stock", "xml_id": "warehouse0"},
        ),
        ("search_count", [[]], {}, {"domain": []}),
        ("unlink", [[3]], {}, {"ids": [3]}),
    ],
)
def test_json2_body_names_positional_arguments(
    method: str, args: list[Any], kwargs: dict[str, Any], body: dict[str, Any]
) -> None:
    assert json2_body(method, args, kwargs) == body


def test_json2_body_refuses_what_it_cannot_name() -> None:
    with pytest.raises(TypeError, match="pass them by keyword"):
        json2_body("action_split", [[1], 3], {})
    with pytest.raises(TypeError, match="record ids"):
        json2_body("action_confirm", ["WH/MO/1"], {})
    with pytest.raises(TypeError, match="given twice"):
        json2_body("write", [[1], {"a": 1}], {"vals": {}})


# -- versions -----------------------------------------------------------------------------------


def test_version_from_the_answers_odoo_gives() -> None:
    real_18 = {
        "server_version": "18.0",
        "server_version_info": [18, 0, 0, "final", 0, ""],
        "server_serie": "18.0",
        "protocol_version": 1,
    }
    assert version_from_info(real_18) == ServerVersion(18, "18.0")
    saas = {"server_version": "saas~18.2", "server_version_info": ["saas~18", 2, 0, "final", 0]}
    assert version_from_info(saas).major == 18
    web_version = {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}
    assert version_from_info(web_version) == ServerVersion(19, "19.0")
    with pytest.raises(OdooConfigError):
        version_from_info({"nothing": True})


# -- against the sandbox ------------------------------------------------------------------------


@pytest.fixture(params=[17, 18, 19], ids=lambda v: f"odoo{v}")
async def sandbox(request: pytest.FixtureRequest) -> AsyncIterator[SandboxHandle]:
    async with running_sandbox(request.param) as handle:
        yield handle


@pytest.fixture
async def http(sandbox: SandboxHandle) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as client:
        yield client


async def test_detect_version_and_protocol(sandbox: SandboxHandle, http: httpx.AsyncClient) -> None:
    version = await detect_version(http, sandbox.database)
    assert version.major == sandbox.info.odoo_version
    transport = transport_for(version.major, http, sandbox.database, SecretStr(sandbox.api_key))
    assert transport.protocol == ("json2" if version.major >= 19 else "jsonrpc")


async def test_each_protocol_returns_the_same_values(
    sandbox: SandboxHandle, http: httpx.AsyncClient
) -> None:
    info = sandbox.info
    transport = transport_for(
        info.odoo_version, http, sandbox.database, SecretStr(info.admin_api_key)
    )
    if isinstance(transport, JsonRpc):
        assert await transport.authenticate(info.admin_login) == info.admin_uid
    storable = {"detailed_type": "product"} if info.odoo_version == 17 else {"is_storable": True}
    one = await transport.execute(
        "product.product", "create", [{"name": "Bolt", "type": "consu", **storable}], {}
    )
    assert isinstance(one, int)
    many = await transport.execute(
        "stock.lot",
        "create",
        [[{"name": "A", "product_id": one}, {"name": "B", "product_id": one}]],
        {},
    )
    assert isinstance(many, list) and len(many) == 2
    rows = await transport.execute("product.product", "read", [[one], ["name"]], {})
    assert rows == [{"id": one, "name": "Bolt"}]
    quant = await transport.execute(
        "stock.quant",
        "create",
        [{"product_id": one, "location_id": 8, "inventory_quantity": 5}],
        {"context": {"inventory_mode": True}},
    )
    applied = await transport.execute(
        "stock.quant", "action_apply_inventory", [[quant]], {"context": {"inventory_mode": True}}
    )
    assert applied is None


async def test_a_wrong_key_is_access_denied(
    sandbox: SandboxHandle, http: httpx.AsyncClient
) -> None:
    transport = transport_for(
        sandbox.info.odoo_version, http, sandbox.database, SecretStr("0" * 40)
    )
    if isinstance(transport, JsonRpc):
        with pytest.raises(OdooAccessDenied, match="refused login"):
            await transport.authenticate(sandbox.login)
        transport.uid = sandbox.info.uid
    with pytest.raises(OdooAccessDenied) as caught:
        await transport.execute("product.product", "search", [[]], {"limit": 1})
    assert "0" * 40 not in str(caught.value)


async def test_json2_on_odoo_18_is_a_config_error() -> None:
    async with (
        running_sandbox(18) as handle,
        httpx.AsyncClient(base_url=handle.base_url) as http,
    ):
        transport = Json2(http, handle.database, SecretStr(handle.api_key))
        with pytest.raises(OdooConfigError, match="JSON-2 needs Odoo 19"):
            await transport.execute("product.product", "search", [[]], {})


async def test_a_closed_port_certainly_did_not_apply() -> None:
    async with running_sandbox(18) as handle:
        url = handle.base_url
        await handle.server.close()
        async with httpx.AsyncClient(base_url=url) as http:
            with pytest.raises(OdooUnavailableError) as caught:
                await detect_version(http, handle.database)
    assert caught.value.may_have_applied is False
    assert "cannot reach" in str(caught.value)
