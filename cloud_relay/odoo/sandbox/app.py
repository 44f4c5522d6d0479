"""The sandbox's HTTP face (an ASGI app): Odoo's ``/jsonrpc`` and, for 19, ``/json/2``, plus
sandbox-only control routes under ``/sandbox/`` (faults and call counts; not part of Odoo).

Envelopes follow the contract: JSON-RPC errors come with HTTP 200 and ``error.code`` 200
(17, 18) or 0 (19); a method returning None leaves ``result`` out; JSON-2 answers the bare
error object with the exception's status.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError as PydanticValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from cloud_relay.odoo.sandbox.dispatch import HttpFault, Sandbox
from cloud_relay.odoo.sandbox.errors import HttpError, NotFound, OdooError, http_status_of
from cloud_relay.odoo.sandbox.faults import FaultRule

Refuser = Callable[[float], Awaitable[None]]
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def create_app(sandbox: Sandbox, refuse: Refuser | None = None) -> Starlette:
    """The ASGI app serving ``sandbox``; ``refuse`` stops listening for some seconds."""

    async def jsonrpc(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except ValueError:
            return PlainTextResponse("Invalid JSON data", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("Invalid JSON-RPC data", status_code=400)
        request_id = body.get("id")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            return PlainTextResponse("Invalid JSON-RPC data", status_code=400)
        try:
            result = await sandbox.jsonrpc(
                params.get("service"), params.get("method"), params.get("args")
            )
        except HttpFault as fault:
            return _fault_response(fault.status)
        except OdooError as error:
            return JSONResponse(_jsonrpc_error(sandbox.version, request_id, error))
        answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
        if result is not None:
            answer["result"] = result
        return JSONResponse(answer)

    async def json2(request: Request) -> Response:
        path = request.url.path
        if sandbox.version == 17:
            return PlainTextResponse("Not Found", status_code=404)
        if sandbox.version == 18:
            return RedirectResponse(f"/web/login?redirect={quote(path, safe='')}", status_code=303)
        if request.method != "POST":
            return PlainTextResponse("Method Not Allowed", status_code=405)
        parts = path.removeprefix("/json/2").strip("/").split("/")
        if len(parts) != 2 or not all(parts):
            return _json2_error(
                sandbox.version, NotFound("Did you mean POST /json/2/<model>/<method>?")
            )
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return PlainTextResponse("Invalid JSON data", status_code=400)
        if not isinstance(body, dict):
            return PlainTextResponse("Invalid JSON data", status_code=400)
        try:
            result = await sandbox.json2(
                request.headers.get("authorization"),
                request.headers.get("x-odoo-database"),
                parts[0],
                parts[1],
                body,
            )
        except HttpFault as fault:
            return _fault_response(fault.status)
        except OdooError as error:
            return _json2_error(sandbox.version, error)
        return JSONResponse(result)

    async def web_version(request: Request) -> Response:
        del request
        info = sandbox.version_info()
        return JSONResponse(
            {"version_info": info["server_version_info"], "version": info["server_version"]}
        )

    async def faults(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"rules": sandbox.faults.rules()})
        if request.method == "DELETE":
            sandbox.faults.clear()
            return JSONResponse({"rules": []})
        try:
            rule = FaultRule.model_validate_json(await request.body())
        except PydanticValidationError as exc:
            return JSONResponse({"error": json.loads(exc.json())}, status_code=422)
        if rule.kind == "refuse_connections":
            if refuse is None:
                return JSONResponse({"error": "not served by serve_sandbox"}, status_code=409)
            return JSONResponse(
                {"refusing_seconds": rule.seconds},
                status_code=202,
                background=BackgroundTask(refuse, rule.seconds),
            )
        return JSONResponse({"id": sandbox.faults.add(rule)}, status_code=201)

    async def calls(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.faults.reset_calls()
        counted = sandbox.faults.calls()
        return JSONResponse({"total": sum(counted.values()), "calls": counted})

    routes = [
        Route("/jsonrpc", jsonrpc, methods=["POST"]),
        Route("/json/2", json2, methods=["GET", "POST"]),
        Route("/json/2/{path:path}", json2, methods=["GET", "POST"]),
        Route("/sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/sandbox/calls", calls, methods=["GET", "DELETE"]),
    ]
    if sandbox.version >= 19:
        routes.append(Route("/web/version", web_version, methods=["GET", "POST"]))
    return Starlette(routes=routes)


def _jsonrpc_error(version: int, request_id: Any, error: OdooError) -> dict[str, Any]:
    if isinstance(error, HttpError) and error.status == 404:
        code, message = 404, "404: Not Found"
    else:
        code, message = (0 if version >= 19 else 200), "Odoo Server Error"
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {"code": code, "message": message, "data": error.serialize(version)},
    }


def _json2_error(version: int, error: OdooError) -> JSONResponse:
    headers = error.headers if isinstance(error, HttpError) else None
    return JSONResponse(
        error.serialize(version), status_code=http_status_of(error), headers=headers
    )


def _fault_response(status: int) -> Response:
    reason = _REASONS.get(status, "Error")
    return PlainTextResponse(f"{status} {reason}", status_code=status)
