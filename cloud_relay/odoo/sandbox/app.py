"""The sandbox's HTTP face (an ASGI app): Odoo's ``/jsonrpc``, ``/web/webclient/version_info``
and, for 19, ``/json/2``, plus sandbox-only control routes under ``/sandbox/`` (faults and call
counts; not part of Odoo).

Envelopes follow the contract: JSON-RPC errors come with HTTP 200 and ``error.code`` 200
(17, 18) or 0 (19); a method returning None leaves ``result`` out; JSON-2 answers the bare
error object with the exception's status. A request that is not JSON gets Odoo's HTML 400 page.
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError as PydanticValidationError
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from cloud_relay.odoo.sandbox import services
from cloud_relay.odoo.sandbox.dispatch import HttpFault, Sandbox
from cloud_relay.odoo.sandbox.errors import (
    HttpError,
    NotFound,
    OdooError,
    PythonError,
    http_status_of,
)
from cloud_relay.odoo.sandbox.faults import FaultRule

logger = logging.getLogger(__name__)

Refuser = Callable[[float], Awaitable[None]]
JSON_TYPES = ("application/json", "application/json-rpc")
"""Content types Odoo reads as a JSON request (any other is an HTTP request)."""
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_HTML = "text/html; charset=utf-8"
_JSON = "application/json; charset=utf-8"
_REASONS = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def create_app(sandbox: Sandbox, refuse: Refuser | None = None) -> Starlette:
    """The ASGI app serving ``sandbox``; ``refuse`` stops listening for some seconds."""

    async def jsonrpc(request: Request) -> Response:
        body = await _json_request(request, sandbox.version)
        if isinstance(body, Response):
            return body
        request_id = body.get("id")
        try:
            service, method, args = services.request_params(*_params(body))
            result = await sandbox.jsonrpc(service, method, args)
        except HttpFault as fault:
            return _fault_response(fault.status)
        except OdooError as error:
            return _json(_jsonrpc_error(sandbox.version, request_id, error))
        except Exception as exc:  # Odoo answers any exception of a call as an error envelope
            logger.warning("sandbox call failed unexpectedly", exc_info=True)
            return _json(_jsonrpc_error(sandbox.version, request_id, PythonError.of(exc)))
        return _json(_jsonrpc_result(request_id, result))

    async def version_info(request: Request) -> Response:
        body = await _json_request(request, sandbox.version)
        if isinstance(body, Response):
            return body
        info = sandbox.version_info()
        if sandbox.version >= 19:
            info.pop("protocol_version")
        return _json(_jsonrpc_result(body.get("id"), info))

    async def json2(request: Request) -> Response:
        path = request.url.path
        if sandbox.version == 17:
            return PlainTextResponse("Not Found", status_code=404)
        if sandbox.version == 18:
            return _login_redirect(request)
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
            return _text_400("Invalid JSON data")
        if not isinstance(body, dict):
            return _text_400("Invalid JSON data")
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
        except Exception as exc:  # Odoo answers any exception of a call with its error object
            logger.warning("sandbox call failed unexpectedly", exc_info=True)
            return _json2_error(sandbox.version, PythonError.of(exc))
        return _json(result)

    async def web_version(request: Request) -> Response:
        del request
        info = sandbox.version_info()
        return _json(
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
        Route("/jsonrpc", jsonrpc, methods=_ANY_METHOD),
        Route("/web/webclient/version_info", version_info, methods=_ANY_METHOD),
        Route("/json/2", json2, methods=["GET", "POST"]),
        Route("/json/2/{path:path}", json2, methods=["GET", "POST"]),
        Route("/sandbox/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/sandbox/calls", calls, methods=["GET", "DELETE"]),
    ]
    if sandbox.version >= 19:
        routes.append(Route("/web/version", web_version, methods=["GET", "POST"]))
    return Starlette(routes=routes)


async def _json_request(request: Request, version: int) -> dict[str, Any] | Response:
    """The JSON body of a ``type='json'`` route, or the 400 Odoo answers instead."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        kind = "jsonrpc" if version >= 19 else "json"
        return _html_400(
            f"Request inferred type is compatible with ['http'] but {request.url.path!r} "
            f"is type={kind!r}."
        )
    try:
        body = json.loads(await request.body())
    except ValueError:
        return _text_400("Invalid JSON data")
    if not isinstance(body, dict):
        return _text_400("Invalid JSON-RPC data")
    return body


def _params(body: dict[str, Any]) -> list[Any]:
    return [body["params"]] if "params" in body else []


def _jsonrpc_result(request_id: Any, result: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
    if result is not None:
        answer["result"] = result
    return answer


def _json(content: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer as Odoo writes it (``json.dumps`` spacing, charset in the content type)."""
    return Response(json.dumps(content), status_code, headers, media_type=_JSON)


def _text_400(text: str) -> Response:
    return Response(text, 400, media_type=_HTML)


def _html_400(description: str) -> Response:
    page = (
        "<!doctype html>\n<html lang=en>\n<title>400 Bad Request</title>\n"
        f"<h1>Bad Request</h1>\n<p>{_escape(description)}</p>\n"
    )
    return Response(page, 400, media_type=_HTML)


def _login_redirect(request: Request) -> Response:
    """18's answer to ``/json/2``: the login page, with the full path to come back to."""
    full_path = f"{request.url.path}?{request.url.query}"
    location = f"/web/login?redirect={quote(full_path, safe='')}"
    target = _escape(location)
    page = (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n"
        "<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target URL: "
        f'<a href="{target}">{target}</a>. If not, click the link.\n'
    )
    return Response(page, 303, {"Location": location}, media_type=_HTML)


def _escape(text: str) -> str:
    """HTML escaping as werkzeug writes it (``&#39;`` for a quote)."""
    return html.escape(text).replace("&#x27;", "&#39;")


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


def _json2_error(version: int, error: OdooError) -> Response:
    headers = error.headers if isinstance(error, HttpError) else None
    return _json(error.serialize(version), http_status_of(error), headers)


def _fault_response(status: int) -> Response:
    reason = _REASONS.get(status, "Error")
    return PlainTextResponse(f"{status} {reason}", status_code=status)
