"""Odoo's wire protocols: JSON-RPC on ``/jsonrpc`` (17, 18) and JSON-2 on ``/json/2`` (19).

The only module that builds Odoo requests and reads Odoo envelopes. Both transports take the
same ``execute(model, method, args, kwargs)`` shape as ``execute_kw`` and return the same
values (``None`` for a method that returns nothing, an ``int`` for ``create`` of one dict), so
nothing above this module knows which protocol is in use.
"""

from __future__ import annotations

import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
from pydantic import SecretStr

from cloud_relay.odoo.errors import (
    OdooAccessDenied,
    OdooConfigError,
    OdooError,
    OdooUnavailableError,
    error_from_http,
    error_from_odoo,
)

logger = logging.getLogger(__name__)

JSONRPC_PATH = "/jsonrpc"
JSON2_PATH = "/json/2"
FIRST_JSON2_VERSION = 19

READ_ONLY_METHODS = frozenset(
    {
        "read",
        "search",
        "search_read",
        "search_count",
        "search_fetch",
        "name_search",
        "read_group",
        "fields_get",
        "default_get",
        "check_object_reference",
        "has_group",
        "context_get",
    }
)
"""Methods that change nothing: calling them again after an unclear failure is harmless."""

# JSON-2 takes named arguments only: the Python parameter names of Odoo 19's methods, in
# order, so that positional ``execute_kw``-style arguments can be named.
_MODEL_METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "create": ("vals_list",),
    "search": ("domain", "offset", "limit", "order"),
    "search_read": ("domain", "fields", "offset", "limit", "order"),
    "search_count": ("domain", "limit"),
    "search_fetch": ("domain", "field_names", "offset", "limit", "order"),
    "name_search": ("name", "domain", "operator", "limit"),
    "read_group": ("domain", "fields", "groupby", "offset", "limit", "orderby", "lazy"),
    "fields_get": ("allfields", "attributes"),
    "default_get": ("fields_list",),
    "check_object_reference": ("module", "xml_id"),
    "load": ("fields", "data"),
    "context_get": (),
}
_RECORD_METHOD_PARAMS: dict[str, tuple[str, ...]] = {
    "read": ("fields", "load"),
    "write": ("vals",),
    "unlink": (),
    "copy": ("default",),
    "has_group": ("group_ext_id",),
}
_DIGITS = re.compile(r"\d+")


@dataclass(frozen=True)
class ServerVersion:
    """What ``common.version`` said: the major version and Odoo's own text (``18.0``)."""

    major: int
    text: str


class Transport(Protocol):
    """One of Odoo's call protocols, authenticated and bound to one database."""

    protocol: str

    async def execute(
        self, model: str, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """Call ``model.method``; ``args[0]`` holds the ids for record methods."""
        ...


def _origin(url: httpx.URL) -> str:
    """``scheme://host:port`` of a URL, never its user info."""
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


async def _post(
    http: httpx.AsyncClient,
    path: str,
    payload: Any,
    *,
    call: str,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """POST ``payload`` as JSON, translating transport failures into sorted errors."""
    where = _origin(http.base_url)
    try:
        return await http.post(path, json=payload, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise OdooUnavailableError(
            type(exc).__name__, f"cannot reach {where}: {exc}".rstrip(": "), call=call
        ) from exc
    except httpx.UnsupportedProtocol as exc:
        raise OdooConfigError("bad url", f"{where}: {exc}", call=call) from exc
    except httpx.TransportError as exc:
        # Sent (or partly sent) with no answer read: Odoo may have run the call.
        raise OdooUnavailableError(
            type(exc).__name__,
            f"no answer from {where}: {exc}".rstrip(": "),
            call=call,
            may_have_applied=True,
        ) from exc


def _json_of(response: httpx.Response) -> Any:
    """The response's JSON body; raises ValueError when it is not JSON."""
    return json.loads(response.content)


class JsonRpc:
    """JSON-RPC 2.0 on ``/jsonrpc`` with the API key in the password slot (Odoo 17, 18)."""

    protocol = "jsonrpc"

    def __init__(self, http: httpx.AsyncClient, database: str, api_key: SecretStr) -> None:
        self._http = http
        self._database = database
        self._api_key = api_key
        self._ids = itertools.count(1)
        self.uid: int | None = None

    async def call(self, service: str, method: str, args: Sequence[Any], *, call: str) -> Any:
        """One ``{"service", "method", "args"}`` call; the result, or ``None`` when left out."""
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": next(self._ids),
            "params": {"service": service, "method": method, "args": list(args)},
        }
        response = await _post(self._http, JSONRPC_PATH, payload, call=call)
        return parse_jsonrpc_response(response, call=call)

    async def version(self) -> ServerVersion:
        """``common.version``."""
        info = await self.call("common", "version", [], call="common.version")
        return version_from_info(info)

    async def authenticate(self, login: str) -> int:
        """``common.authenticate`` with the API key; the uid, or OdooAccessDenied."""
        uid = await self.call(
            "common",
            "authenticate",
            [self._database, login, self._api_key.get_secret_value(), {}],
            call="common.authenticate",
        )
        if not isinstance(uid, int) or isinstance(uid, bool) or uid <= 0:
            raise OdooAccessDenied(
                "odoo.exceptions.AccessDenied",
                f"Odoo refused login {login!r} with the configured API key "
                f"on database {self._database!r}",
                call="common.authenticate",
            )
        self.uid = uid
        return uid

    async def execute(
        self, model: str, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """``object.execute_kw``; needs :meth:`authenticate` first."""
        if self.uid is None:
            raise RuntimeError("authenticate before calling execute")
        params = [
            self._database,
            self.uid,
            self._api_key.get_secret_value(),
            model,
            method,
            list(args),
            dict(kwargs),
        ]
        return await self.call("object", "execute_kw", params, call=f"{model}.{method}")


class Json2:
    """JSON-2 (``POST /json/2/<model>/<method>``, bearer API key, named arguments; Odoo 19)."""

    protocol = "json2"

    def __init__(self, http: httpx.AsyncClient, database: str, api_key: SecretStr) -> None:
        self._http = http
        self._headers = {
            "Authorization": f"bearer {api_key.get_secret_value()}",
            "X-Odoo-Database": database,
        }

    async def execute(
        self, model: str, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        """Name the arguments, call, and make ``create`` of one dict return one id."""
        call = f"{model}.{method}"
        body = json2_body(method, args, kwargs)
        response = await _post(
            self._http, f"{JSON2_PATH}/{model}/{method}", body, call=call, headers=self._headers
        )
        result = parse_json2_response(response, call=call)
        one_dict = method == "create" and args and isinstance(args[0], Mapping)
        if one_dict and isinstance(result, list) and len(result) == 1:
            return result[0]
        return result


def _looks_like_ids(value: Any) -> bool:
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, list | tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    )


def _ids(value: Any) -> list[int]:
    return [value] if isinstance(value, int) else list(value)


def json2_body(method: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-2 body for an ``execute_kw``-style call: ids and arguments by name.

    Raises TypeError for positional arguments this module cannot name (pass them by name).
    """
    body: dict[str, Any] = {}
    positional = list(args)
    if method in _MODEL_METHOD_PARAMS:
        names = _MODEL_METHOD_PARAMS[method]
        if method == "create" and positional and isinstance(positional[0], Mapping):
            positional[0] = [positional[0]]
    else:
        if positional:
            if not _looks_like_ids(positional[0]):
                raise TypeError(f"{method}: the first argument must be record ids")
            body["ids"] = _ids(positional.pop(0))
        names = _RECORD_METHOD_PARAMS.get(method, ())
    if len(positional) > len(names):
        raise TypeError(
            f"{method}: cannot name {len(positional) - len(names)} positional argument(s) "
            "for JSON-2; pass them by keyword"
        )
    body.update(zip(names, positional, strict=False))
    for key, value in kwargs.items():
        if key in body:
            raise TypeError(f"{method}: argument {key!r} given twice")
        body[key] = value
    return body


def parse_jsonrpc_response(response: httpx.Response, *, call: str) -> Any:
    """The ``result`` of a ``/jsonrpc`` answer (``None`` when Odoo left it out), or raise."""
    try:
        body = _json_of(response)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        if response.status_code != 200:
            raise error_from_http(response.status_code, response.reason_phrase, call=call)
        raise OdooConfigError(
            "not JSON-RPC",
            f"{_origin(response.url)}{JSONRPC_PATH} did not answer a JSON-RPC object",
            call=call,
        )
    error = body.get("error")
    if error is not None:
        raise _jsonrpc_error(error, call=call)
    if response.status_code != 200:
        raise error_from_http(response.status_code, response.reason_phrase, call=call)
    return body.get("result")


def _jsonrpc_error(error: Any, *, call: str) -> OdooError:
    if isinstance(error, dict):
        data = error.get("data")
        if isinstance(data, dict) and data.get("name"):
            return error_from_odoo(data, call=call)
        code, message = error.get("code"), error.get("message")
        return error_from_odoo({"name": f"JSON-RPC error {code}", "message": message}, call=call)
    return error_from_odoo({"name": "JSON-RPC error", "message": str(error)}, call=call)


def parse_json2_response(response: httpx.Response, *, call: str) -> Any:
    """The JSON value of a JSON-2 answer, or raise the sorted error of a non-200 answer."""
    status = response.status_code
    if status == 200:
        try:
            return _json_of(response)
        except ValueError as exc:
            raise OdooConfigError(
                "not JSON-2", f"{_origin(response.url)} answered 200 without JSON", call=call
            ) from exc
    if 300 <= status < 400:
        raise OdooConfigError(
            "no JSON-2",
            f"{_origin(response.url)} redirects {JSON2_PATH} (HTTP {status}): "
            "JSON-2 needs Odoo 19 or later",
            call=call,
        )
    try:
        body = _json_of(response)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("name"):
        # Odoo caught the exception, so the call's transaction was rolled back.
        raise error_from_odoo(body, call=call)
    raise error_from_http(status, response.reason_phrase, call=call)


def version_from_info(info: Any) -> ServerVersion:
    """The major version from ``common.version`` (``server_version_info[0]``, which is
    ``saas~18`` on SaaS builds) or from ``/web/version``'s ``version_info``."""
    if isinstance(info, dict):
        parts = info.get("server_version_info") or info.get("version_info")
        text = str(info.get("server_version") or info.get("version") or "")
        if isinstance(parts, list) and parts:
            match = _DIGITS.search(str(parts[0]))
            if match:
                return ServerVersion(int(match[0]), text or str(parts[0]))
    raise OdooConfigError("not Odoo", f"unexpected answer to common.version: {info!r:.200}")


async def detect_version(http: httpx.AsyncClient, database: str) -> ServerVersion:
    """Ask the server its version: ``common.version`` on ``/jsonrpc``, or ``/web/version``
    where ``/jsonrpc`` is gone (after 19)."""
    rpc = JsonRpc(http, database, SecretStr(""))
    try:
        return await rpc.version()
    except OdooConfigError as exc:
        jsonrpc_error = exc
    try:
        response = await http.get("/web/version")
    except httpx.TransportError:
        raise jsonrpc_error from None
    if response.status_code != 200:
        raise jsonrpc_error
    try:
        return version_from_info(_json_of(response))
    except ValueError:
        raise jsonrpc_error from None


def transport_for(
    version: int, http: httpx.AsyncClient, database: str, api_key: SecretStr
) -> JsonRpc | Json2:
    """JSON-2 from 19 on, JSON-RPC before."""
    if version >= FIRST_JSON2_VERSION:
        return Json2(http, database, api_key)
    return JsonRpc(http, database, api_key)
