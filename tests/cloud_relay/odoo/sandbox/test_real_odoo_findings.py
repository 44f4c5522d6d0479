"""Answers pinned to what a real Odoo 18.0 server gave for the same calls (driven side by side
with the sandbox): move reservation at confirmation, move origins, product names, categories,
API key rights, and how malformed requests and arguments are answered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cloud_relay.odoo.sandbox.scenario import (
    Odoo,
    OdooFault,
    Rpc,
    bom,
    confirmed_mo,
    count_stock,
    storable,
    template_of,
)

MOVE_FIELDS = ["product_uom_qty", "quantity", "picked", "state", "origin", "move_line_ids"]
JSON_UTF8 = "application/json; charset=utf-8"


async def _moves(x: Rpc, mo: int, link: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = await x(
        "stock.move", "search_read", [[link, "=", mo]], fields=MOVE_FIELDS
    )
    return rows


async def _summary(x: Rpc, mo: int, link: str) -> list[tuple[float, float, bool, str]]:
    return [
        (m["product_uom_qty"], m["quantity"], m["picked"], m["state"])
        for m in await _moves(x, mo, link)
    ]


async def _fault(x: Rpc, model: str, method: str, *args: Any, **kwargs: Any) -> OdooFault:
    with pytest.raises(OdooFault) as caught:
        await x(model, method, *args, **kwargs)
    return caught.value


async def test_confirm_reserves_finished_move_and_available_components(odoo18: Odoo) -> None:
    x = odoo18.x
    finished = await storable(x, "Gearbox", code="GB-1")
    none, partial, full = [await storable(x, name) for name in ("None", "Partial", "Full")]
    consumable = await x("product.product", "create", {"name": "Grease", "type": "consu"})
    await count_stock(x, partial, 4)
    await count_stock(x, full, 100)
    lines: list[tuple[int, float]] = [(none, 2), (partial, 2), (full, 2), (consumable, 2)]
    mo = await x(
        "mrp.production",
        "create",
        {"product_id": finished, "product_qty": 3, "bom_id": await bom(x, finished, lines)},
    )
    name = (await x("mrp.production", "read", [mo], fields=["name"]))[0]["name"]
    for link in ("raw_material_production_id", "production_id"):
        assert {m["origin"] for m in await _moves(x, mo, link)} == {name}
    assert await x("mrp.production", "action_confirm", [mo]) is True
    assert await _summary(x, mo, "raw_material_production_id") == [
        (6.0, 0.0, False, "confirmed"),
        (6.0, 4.0, False, "partially_available"),
        (6.0, 6.0, False, "assigned"),
        (6.0, 6.0, False, "assigned"),
    ]
    assert await _summary(x, mo, "production_id") == [(3.0, 3.0, False, "assigned")]
    line_ids = (await _moves(x, mo, "production_id"))[0]["move_line_ids"]
    lines_read = await x(
        "stock.move.line", "read", line_ids, fields=["quantity", "location_id", "lot_id"]
    )
    assert lines_read == [
        {
            "id": line_ids[0],
            "quantity": 3.0,
            "location_id": [15, "Virtual Locations/Production"],
            "lot_id": False,
        }
    ]
    state = await x("mrp.production", "read", [mo], fields=["state", "reservation_state"])
    assert (state[0]["state"], state[0]["reservation_state"]) == ("confirmed", "confirmed")


async def test_serial_product_reserves_one_line_per_unit(odoo18: Odoo) -> None:
    x = odoo18.x
    finished = await storable(x, "Pump", tracking="serial")
    component = await storable(x, "Seal")
    await count_stock(x, component, 100)
    mo = await confirmed_mo(x, finished, 3, await bom(x, finished, [(component, 2)]))
    assert (await x("mrp.production", "read", [mo], fields=["reservation_state"]))[0][
        "reservation_state"
    ] == "assigned"
    moves = await _moves(x, mo, "production_id")
    assert (moves[0]["quantity"], moves[0]["state"], len(moves[0]["move_line_ids"])) == (
        3.0,
        "assigned",
        3,
    )
    await x("mrp.production", "write", [mo], {"qty_producing": 1})
    await x("mrp.production", "set_qty_producing", [mo])
    assert await _summary(x, mo, "production_id") == [(3.0, 1.0, False, "partially_available")]
    assert await _summary(x, mo, "raw_material_production_id") == [
        (6.0, 2.0, True, "partially_available")
    ]


async def test_partial_close_and_backorder_rename_move_origins(odoo18: Odoo) -> None:
    x = odoo18.x
    finished = await storable(x, "Valve")
    component = await storable(x, "Body")
    await count_stock(x, component, 100)
    mo = await confirmed_mo(x, finished, 3, await bom(x, finished, [(component, 2)]))
    name = (await x("mrp.production", "read", [mo], fields=["name"]))[0]["name"]
    await x("mrp.production", "write", [mo], {"qty_producing": 2})
    await x("mrp.production", "set_qty_producing", [mo])
    context = {"skip_backorder": True, "mo_ids_to_backorder": [mo]}
    action = await x("mrp.production", "button_mark_done", [mo], context=context)
    assert await _summary(x, mo, "production_id") == [(2.0, 2.0, True, "done")]
    origins = {m["origin"] for m in await _moves(x, mo, "raw_material_production_id")}
    assert origins == {f"{name}-001"}
    backorder = action["res_id"]
    assert await _summary(x, backorder, "production_id") == [(1.0, 1.0, False, "assigned")]
    assert {m["origin"] for m in await _moves(x, backorder, "production_id")} == {f"{name}-002"}
    cancelled = await confirmed_mo(x, finished, 3, await bom(x, finished, [(component, 2)]))
    await x("mrp.production", "action_cancel", [cancelled])
    assert await _summary(x, cancelled, "production_id") == [(3.0, 0.0, False, "cancel")]


async def test_template_names_carry_the_internal_reference(odoo18: Odoo) -> None:
    x = odoo18.x
    product = await storable(x, "Probe gearbox", code="PG-1")
    template = await template_of(x, product)
    bom_id = await bom(x, product, [(await storable(x, "Bolt"), 1)])
    named = "[PG-1] Probe gearbox"
    row = (await x("product.product", "read", [product], fields=["product_tmpl_id", "categ_id"]))[0]
    assert row["product_tmpl_id"] == [template, named]
    assert row["categ_id"] == [1, "All"]
    assert (await x("mrp.bom", "read", [bom_id], fields=["display_name", "product_tmpl_id"]))[
        0
    ] == {"id": bom_id, "display_name": named, "product_tmpl_id": [template, named]}
    mo = await x("mrp.production", "create", {"product_id": product, "product_qty": 1})
    assert (await x("mrp.production", "read", [mo], fields=["bom_id"]))[0]["bom_id"] == [
        bom_id,
        named,
    ]
    categories = await x(
        "product.category",
        "search_read",
        [],
        fields=["name", "complete_name", "parent_id", "parent_path", "display_name"],
    )
    assert categories[0] == {
        "id": 1,
        "name": "All",
        "complete_name": "All",
        "parent_id": False,
        "parent_path": "1/",
        "display_name": "All",
    }
    assert [c["display_name"] for c in categories[1:]] == ["All / Expenses", "All / Saleable"]


async def test_api_keys_cannot_be_deleted_over_rpc(odoo18: Odoo) -> None:
    unlink = await _fault(odoo18.x, "res.users.apikeys", "unlink", [999999])
    assert (unlink.name, unlink.message) == (
        "odoo.exceptions.AccessError",
        "You are not allowed to delete 'Users API Keys' (res.users.apikeys) records.\n\n"
        "No group currently allows this operation.\n\n"
        "Contact your administrator to request access if necessary.",
    )
    for rpc, key in ((odoo18.x, 999999), (odoo18.connector, 1)):
        removed = await _fault(rpc, "res.users.apikeys", "remove", [key])
        assert (removed.name, removed.message) == (
            "odoo.exceptions.UserError",
            "This method can only be accessed over HTTP",
        )
    own = await odoo18.connector("res.users.apikeys", "search_read", [], fields=["user_id"])
    assert [row["user_id"][0] for row in own] == [odoo18.handle.info.uid]
    assert len(await odoo18.x("res.users.apikeys", "search", [])) == 2
    hidden = await _fault(odoo18.connector, "res.users.apikeys", "read", [1], fields=["name"])
    assert hidden.message == (
        "Uh-oh! Looks like you have stumbled upon some top-secret records.\n\n"
        "Sorry, Plant connector (id=6) doesn't have 'read' access to:\n"
        "- Users API Keys (res.users.apikeys)\n\n"
        "If you really, really need access, perhaps you can win over your friendly "
        "administrator with a batch of freshly baked cookies."
    )


async def test_unknown_database_names_the_server(odoo18: Odoo) -> None:
    body = await odoo18.x.raw("common", "authenticate", "nosuchdb", "admin", "admin", {})
    assert body["error"]["data"]["message"] == (
        'connection to server at "127.0.0.1", port 5432 failed: '
        'FATAL:  database "nosuchdb" does not exist\n'
    )


def _sql(message: str, line: str, caret: int) -> str:
    return f"{message}\nLINE 1: {line}\n{' ' * caret}^\n"


BAD_ARGUMENTS = [
    (
        "res.users",
        {"limit": "x"},
        "psycopg2.errors.InvalidTextRepresentation",
        _sql(
            'invalid input syntax for type bigint: "x"',
            '...users__partner_id"."name"  , "res_users"."login"   LIMIT \'x\'',
            68,
        ),
    ),
    (
        "mrp.production",
        {"limit": "x"},
        "psycopg2.errors.InvalidTextRepresentation",
        _sql(
            'invalid input syntax for type bigint: "x"',
            '...uction"."date_start" ASC , "mrp_production"."id"   LIMIT \'x\'',
            68,
        ),
    ),
    (
        "product.product",
        {"offset": "x", "limit": -1},
        "psycopg2.errors.InvalidTextRepresentation",
        _sql(
            'invalid input syntax for type bigint: "x"',
            "...\"->>'en_US'  , \"product_product\".\"id\"   LIMIT  -1 OFFSET 'x'",
            68,
        ),
    ),
    (
        "res.users",
        {"limit": True},
        "psycopg2.errors.DatatypeMismatch",
        _sql(
            "argument of LIMIT must be type bigint, not type boolean",
            '...sers__partner_id"."name"  , "res_users"."login"   LIMIT true',
            67,
        ),
    ),
    ("res.users", {"limit": -1}, "psycopg2.errors.InvalidRowCountInLimitClause",
     "LIMIT must not be negative\n"),
    ("res.users", {"offset": -1}, "psycopg2.errors.InvalidRowCountInResultOffsetClause",
     "OFFSET must not be negative\n"),
    ("res.users", {"limit": 10**20}, "psycopg2.errors.NumericValueOutOfRange",
     "bigint out of range\n"),
    ("res.users", {"limit": {"a": 1}}, "psycopg2.ProgrammingError", "can't adapt type 'dict'"),
    ("res.users", {"order": 5}, "builtins.TypeError",
     "expected string or bytes-like object, got 'int'"),
    ("res.users", {"order": "name up"}, "odoo.exceptions.UserError",
     'Invalid "order" specified (name up). A valid "order" specification is a comma-separated '
     "list of valid field names (optionally followed by asc/desc for the direction)"),
    ("res.users", {"order": "groups_id"}, "builtins.ValueError",
     "Cannot convert res.users.groups_id to SQL because it is not stored"),
    ("product.product", {"fields": True}, "builtins.TypeError", "'bool' object is not iterable"),
    ("product.product", {"fields": [["name"]]}, "builtins.TypeError", "unhashable type: 'list'"),
    ("product.product", {"fields": [1]}, "builtins.ValueError",
     "Invalid field 1 on model 'product.product'"),
]  # fmt: skip


@pytest.mark.parametrize(("model", "kwargs", "name", "message"), BAD_ARGUMENTS)
async def test_bad_search_arguments_fail_as_in_odoo(
    odoo18: Odoo, model: str, kwargs: dict[str, Any], name: str, message: str
) -> None:
    fault = await _fault(odoo18.x, model, "search_read", [], **kwargs)
    assert (fault.name, fault.message) == (name, message)


BAD_DOMAINS = [
    ("x", "builtins.AssertionError",
     "Domains to normalize must have a 'domain' form: a list or tuple of domain components"),
    (["&"], "builtins.ValueError", "Domain ['&'] is syntactically not correct."),
    ([["id"]], "builtins.IndexError", "tuple index out of range"),
    ([["id", "="]], "builtins.ValueError", "not enough values to unpack (expected 3, got 2)"),
    ([[1, 2, 3]], "builtins.AttributeError", "'int' object has no attribute 'split'"),
    ([["id", "=", 2], "bad"], "builtins.ValueError",
     "Invalid field product.product.b in leaf ('b', 'a', 'd')"),
    ([["id", "IN", [2]]], "builtins.ValueError", "Invalid leaf ('id', 'IN', [2])"),
    ([["id", "in", 5]], "builtins.ValueError", "Invalid domain term ('id', 'in', 5)"),
    ([["name.x", "=", "y"]], "builtins.AssertionError",
     "Invalid field 'name.x' in domain term ('name.x', '=', 'y')"),
    ([["id", "=", "x"]], "psycopg2.errors.InvalidTextRepresentation",
     _sql('invalid input syntax for type integer: "x"',
          '...t"."active" = true) AND ("product_product"."id" = \'x\')) AND ...', 61)),
]  # fmt: skip


@pytest.mark.parametrize(("domain", "name", "message"), BAD_DOMAINS)
async def test_bad_domains_fail_as_in_odoo(
    odoo18: Odoo, domain: Any, name: str, message: str
) -> None:
    fault = await _fault(odoo18.x, "product.product", "search", domain)
    assert (fault.name, fault.message) == (name, message)


async def test_lenient_values_are_taken_as_postgresql_takes_them(odoo18: Odoo) -> None:
    x = odoo18.x
    products = [await storable(x, f"P{i}", code=f"P-{i}") for i in range(4)]
    assert await x("product.product", "search", [], limit="2", order="id") == products[:2]
    assert await x("product.product", "search", [], limit=1.5, order="id") == products[:2]
    assert await x("product.product", "search", [], offset=0, limit=0, order="id") == products
    assert await x("product.product", "search", [["id", "=", products[:2]]]) == products[:2]
    assert await x("product.product", "search", [["id", "in", []], ["bogus", "=", 1]]) == []
    missing = await _fault(x, "product.product", "read", [], fields=["bogus"])
    assert (missing.name, missing.message) == ("builtins.KeyError", "bogus")


MALFORMED_PARAMS = [
    (None, "builtins.TypeError",
     "RPC.jsonrpc() missing 3 required positional arguments: 'service', 'method', and 'args'"),
    ({"service": "nope", "method": "x", "args": []}, "builtins.KeyError", "nope"),
    ({"service": "common", "method": "nope", "args": []}, "builtins.Exception",
     "Method not found: nope"),
    ({"service": "common", "method": "authenticate", "args": ["plant", "admin", "admin"]},
     "builtins.TypeError",
     "exp_authenticate() missing 1 required positional argument: 'user_agent_env'"),
    ({"service": "common", "method": "version", "args": "ab"}, "builtins.TypeError",
     "exp_version() takes 0 positional arguments but 2 were given"),
    ({"service": "object", "method": "execute_kw", "args": ["plant", 2]}, "builtins.IndexError",
     "list index out of range"),
    ("x", "builtins.ValueError",
     "dictionary update sequence element #0 has length 1; 2 is required"),
]  # fmt: skip


@pytest.mark.parametrize(("params", "name", "message"), MALFORMED_PARAMS)
async def test_malformed_envelopes_fail_as_in_odoo(
    odoo18: Odoo, params: Any, name: str, message: str
) -> None:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": "call", "id": 3}
    if params is not None:
        body["params"] = params
    response = await odoo18.http.post("/jsonrpc", json=body)
    assert (response.status_code, response.headers["content-type"]) == (200, JSON_UTF8)
    data = response.json()["error"]["data"]
    assert (data["name"], data["message"], data["arguments"]) == (name, message, [message])


async def test_malformed_object_calls_fail_as_in_odoo(odoo18: Odoo) -> None:
    x = odoo18.x
    context = await _fault(x, "res.users", "search", [], context="x")
    assert (context.name, context.message) == (
        "builtins.ValueError",
        "dictionary update sequence element #0 has length 1; 2 is required",
    )
    body = await x.raw("object", "execute_kw", "plant", 2, x.secret, "res.users", "read", [], {})
    assert body["error"]["data"]["name"] == "builtins.IndexError"
    assert body["error"]["data"]["message"] == "tuple index out of range"
    search = await _fault(x, "product.product", "search", [], 0, 1, None, "extra")
    assert search.message == (
        "BaseModel.search() takes from 2 to 5 positional arguments but 6 were given"
    )
    kwargs = await x.raw(
        "object", "execute_kw", "plant", 2, x.secret, "res.users", "search", [[]], "x"
    )
    assert kwargs["error"]["data"]["message"] == (
        "odoo.service.model.execute() argument after ** must be a mapping, not str"
    )


async def test_requests_that_are_not_json_get_the_html_400(odoo18: Odoo) -> None:
    page = (
        "<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n"
        "<p>Request inferred type is compatible with [&#39;http&#39;] but &#39;{}&#39; is "
        "type=&#39;json&#39;.</p>\n"
    )
    envelope = json.dumps({"jsonrpc": "2.0", "method": "call", "params": {}})
    for path in ("/jsonrpc", "/web/webclient/version_info"):
        plain = await odoo18.http.post(
            path, content=envelope, headers={"content-type": "text/plain"}
        )
        fetched = await odoo18.http.get(path)
        for response in (plain, fetched):
            assert response.status_code == 400
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.text == page.format(path)
    bad = await odoo18.http.post(
        "/jsonrpc", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert (bad.status_code, bad.headers["content-type"], bad.text) == (
        400,
        "text/html; charset=utf-8",
        "Invalid JSON data",
    )


async def test_version_info_route_and_json_content_type(odoo18: Odoo) -> None:
    response = await odoo18.http.post(
        "/web/webclient/version_info", json={"jsonrpc": "2.0", "id": 3, "params": {"x": 1}}
    )
    assert response.headers["content-type"] == JSON_UTF8
    assert response.json() == {
        "jsonrpc": "2.0",
        "id": 3,
        "result": {
            "server_version": "18.0",
            "server_version_info": [18, 0, 0, "final", 0, ""],
            "server_serie": "18.0",
            "protocol_version": 1,
        },
    }
    answer = await odoo18.http.post(
        "/jsonrpc", json={"params": {"service": "common", "method": "version", "args": []}}
    )
    assert answer.headers["content-type"] == JSON_UTF8
    assert answer.text.startswith('{"jsonrpc": "2.0", "id": null, "result": {')


async def test_json2_redirects_to_login_on_18(odoo18: Odoo) -> None:
    response = await odoo18.http.post("/json/2/res.users/search_read?a=1", json={})
    location = "/web/login?redirect=%2Fjson%2F2%2Fres.users%2Fsearch_read%3Fa%3D1"
    assert (response.status_code, response.headers["location"]) == (303, location)
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.text == (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
        "<p>You should be redirected automatically to the target URL: "
        f'<a href="{location}">{location}</a>. If not, click the link.\n'
    )
    bare = await odoo18.http.get("/json/2")
    assert bare.headers["location"] == "/web/login?redirect=%2Fjson%2F2%3F"


async def test_do_scrap_on_several_scraps_shows_1_on_all_but_the_first(odoo18: Odoo) -> None:
    """Real 18.0: the moves are right, but the scraps' own quantity is recomputed to 1 for every
    scrap after the first (mrp's _compute_scrap_qty returns early). Validate one at a time."""
    x = odoo18.x
    product = await storable(x, "Bolt")
    fields = ["id", "product_id/.id", "scrap_qty", "location_id/.id"]
    rows = [[f"cloud_relay.s{i}", product, qty, 8] for i, qty in enumerate((3, 2, 5))]
    loaded = await x("stock.scrap", "load", fields, rows)
    assert loaded["messages"] == []
    assert await x("stock.scrap", "do_scrap", loaded["ids"]) is True
    scraps = await x("stock.scrap", "read", loaded["ids"], fields=["scrap_qty", "state"])
    assert [(s["scrap_qty"], s["state"]) for s in scraps] == [
        (3, "done"),
        (1, "done"),
        (1, "done"),
    ]
    moves = await x(
        "stock.move", "search_read", [["scrap_id", "in", loaded["ids"]]], fields=["quantity"]
    )
    assert sorted(m["quantity"] for m in moves) == [2, 3, 5]


async def test_load_reads_naive_datetimes_in_the_context_or_user_time_zone(odoo18: Odoo) -> None:
    """Real 18.0 (demo users are in Europe/Brussels): ``load`` takes a naive datetime as the
    user's local time unless the context names a ``tz``; ``write`` takes UTC."""
    x = odoo18.connector
    workcenter = await odoo18.x("mrp.workcenter", "create", {"name": "Press"})
    loss = (
        await x(
            "mrp.workcenter.productivity.loss",
            "search_read",
            [["loss_type", "=", "productive"]],
            fields=["id"],
            limit=1,
        )
    )[0]["id"]
    fields = ["id", "workcenter_id/.id", "loss_id/.id", "date_start"]
    local = await x(
        "mrp.workcenter.productivity",
        "load",
        fields,
        [["t1", workcenter, loss, "2025-03-01 06:00:00"]],
    )
    utc = await x(
        "mrp.workcenter.productivity",
        "load",
        fields,
        [["t2", workcenter, loss, "2025-03-01 06:00:00"]],
        context={"tz": "UTC"},
    )
    rows = await x(
        "mrp.workcenter.productivity",
        "read",
        local["ids"] + utc["ids"],
        fields=["date_start"],
    )
    assert [r["date_start"] for r in rows] == ["2025-03-01 05:00:00", "2025-03-01 06:00:00"]
