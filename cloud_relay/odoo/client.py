"""A typed async face on Odoo's external API, the same for Odoo 17, 18 and 19.

``OdooClient.connect`` finds the server's version, picks the protocol (JSON-RPC or JSON-2),
checks the credentials and keeps one pooled HTTP client. ``execute`` retries a transient
failure only when repeating it cannot apply the call twice: when Odoo certainly did not run it
(connection refused, transaction rolled back) or when the method only reads.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import httpx

from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.errors import (
    OdooAccessDenied,
    OdooConfigError,
    OdooError,
    OdooRecordNotFound,
    OdooRejectedError,
    OdooTransientError,
)
from cloud_relay.odoo.rpc import (
    READ_ONLY_METHODS,
    Json2,
    JsonRpc,
    ServerVersion,
    detect_version,
    transport_for,
)

logger = logging.getLogger(__name__)

SUPPORTED_VERSIONS = (17, 18, 19)
USER_AGENT = "cloud-relay"
T = TypeVar("T")

Domain = Sequence[Any]
"""An Odoo domain: ``[["name", "=", "WH/MO/00001"], ...]``."""
Record = dict[str, Any]


@dataclass(frozen=True)
class OdooClientStats:
    """Calls made, retries, and errors by kind since the client connected."""

    protocol: str
    server_version: str
    calls_total: int
    retries_total: int
    transient_errors_total: int
    rejected_errors_total: int
    config_errors_total: int
    last_error: str | None


class OdooClient:
    """One authenticated connection pool to one Odoo database."""

    def __init__(
        self,
        config: OdooConfig,
        http: httpx.AsyncClient,
        transport: JsonRpc | Json2,
        server: ServerVersion,
        uid: int,
    ) -> None:
        self._config = config
        self._http = http
        self._transport = transport
        self._server = server
        self._uid = uid
        self._calls = 0
        self._retries = 0
        self._transient = 0
        self._rejected = 0
        self._config_errors = 0
        self._last_error: str | None = None

    @classmethod
    async def connect(
        cls, config: OdooConfig, *, http_transport: httpx.AsyncBaseTransport | None = None
    ) -> OdooClient:
        """Reach Odoo, learn its version (unless configured) and check the API key.

        Raises OdooAccessDenied for a refused key, OdooConfigError for a server that is not
        a supported Odoo, OdooTransientError when it cannot be reached.
        """
        api_key = config.resolve_api_key()
        http = httpx.AsyncClient(
            base_url=config.url,
            timeout=httpx.Timeout(config.timeout_seconds, connect=config.connect_timeout_seconds),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            headers={"User-Agent": USER_AGENT},
            follow_redirects=False,
            transport=http_transport,
        )
        try:
            server = await _retrying(config, lambda: _server_version(config, http))
            transport = transport_for(server.major, http, config.database, api_key)
            uid = await _retrying(config, lambda: _authenticate(config, transport))
        except BaseException:
            await http.aclose()
            raise
        logger.info(
            "connected to Odoo %s at %s, database %s, as uid %d over %s",
            server.text,
            httpx.URL(config.url).host,
            config.database,
            uid,
            transport.protocol,
        )
        return cls(config, http, transport, server, uid)

    # -- what was found at connect ---------------------------------------------------------

    @property
    def version(self) -> int:
        """Odoo's major version (17, 18 or 19)."""
        return self._server.major

    @property
    def server_version(self) -> str:
        """The version as Odoo writes it (``18.0``)."""
        return self._server.text

    @property
    def uid(self) -> int:
        """The connector account's user id."""
        return self._uid

    @property
    def protocol(self) -> str:
        """``jsonrpc`` or ``json2``."""
        return self._transport.protocol

    # -- calls ---------------------------------------------------------------------------------

    async def execute(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``model.method`` as ``execute_kw`` does: ids first for record methods,
        ``context=...`` among the keyword arguments. ``None`` when the method returns nothing.

        Raises a sorted :class:`~cloud_relay.odoo.errors.OdooError`.
        """
        return await self._call(model, method, args, kwargs)

    async def search_read(
        self,
        model: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        limit: int | None = None,
        offset: int = 0,
        order: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[Record]:
        """Records matching ``domain``, with ``fields`` (and ``id``)."""
        kwargs = _options(fields=list(fields), limit=limit, order=order, context=context)
        if offset:
            kwargs["offset"] = offset
        return _records(await self._call(model, "search_read", [list(domain)], kwargs))

    async def search(
        self,
        model: str,
        domain: Domain,
        *,
        limit: int | None = None,
        order: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Ids of the records matching ``domain``."""
        kwargs = _options(limit=limit, order=order, context=context)
        result = await self._call(model, "search", [list(domain)], kwargs)
        return [int(i) for i in result]

    async def find_one(
        self,
        model: str,
        domain: Domain,
        fields: Sequence[str],
        *,
        order: str | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> Record:
        """The first record matching ``domain``; OdooRecordNotFound when none does."""
        found = await self.search_read(model, domain, fields, limit=1, order=order, context=context)
        if not found:
            raise OdooRecordNotFound(model, f"matches {list(domain)!r}").for_call(
                f"{model}.search_read"
            )
        return found[0]

    async def read(
        self,
        model: str,
        ids: Sequence[int],
        fields: Sequence[str],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> list[Record]:
        """The records ``ids``; OdooRecordNotFound naming the ids Odoo left out (Odoo itself
        answers a shorter list, not an error, for deleted ids)."""
        wanted = list(dict.fromkeys(int(i) for i in ids))
        kwargs = _options(fields=list(fields), context=context)
        records = _records(await self._call(model, "read", [wanted], kwargs))
        missing = sorted(set(wanted) - {r.get("id") for r in records})
        if missing:
            raise OdooRecordNotFound(model, f"with id {', '.join(map(str, missing))}").for_call(
                f"{model}.read"
            )
        return records

    async def create(
        self, model: str, values: Mapping[str, Any], *, context: Mapping[str, Any] | None = None
    ) -> int:
        """Create one record; its id."""
        result = await self._call(model, "create", [dict(values)], _options(context=context))
        if isinstance(result, list) and len(result) == 1:
            result = result[0]
        return int(result)

    async def write(
        self,
        model: str,
        ids: Sequence[int],
        values: Mapping[str, Any],
        *,
        context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Write ``values`` on the records ``ids`` (MissingError if one is gone)."""
        result = await self._call(
            model, "write", [list(ids), dict(values)], _options(context=context)
        )
        return bool(result)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> OdooClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def stats(self) -> OdooClientStats:
        """Counters since connect."""
        return OdooClientStats(
            self.protocol,
            self.server_version,
            self._calls,
            self._retries,
            self._transient,
            self._rejected,
            self._config_errors,
            self._last_error,
        )

    # -- internals ----------------------------------------------------------------------------

    async def _call(
        self, model: str, method: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> Any:
        attempt = 0
        while True:
            attempt += 1
            self._calls += 1
            try:
                return await self._transport.execute(model, method, args, kwargs)
            except OdooError as exc:
                self._count(exc)
                if not _may_retry(exc, method) or attempt >= self._config.retry_attempts:
                    raise
                delay = _backoff(self._config, attempt)
                logger.debug(
                    "retrying Odoo call",
                    extra={"call": f"{model}.{method}", "attempt": attempt, "error": str(exc)},
                )
                self._retries += 1
                await asyncio.sleep(delay)

    def _count(self, exc: OdooError) -> None:
        self._last_error = str(exc)
        if isinstance(exc, OdooTransientError):
            self._transient += 1
        elif isinstance(exc, OdooRejectedError):
            self._rejected += 1
        else:
            self._config_errors += 1


def _may_retry(exc: OdooError, method: str) -> bool:
    """Transient, and repeating cannot apply the call twice."""
    if not isinstance(exc, OdooTransientError):
        return False
    return not exc.may_have_applied or method in READ_ONLY_METHODS


def _backoff(config: OdooConfig, attempt: int) -> float:
    """Exponential backoff with jitter in [half, full] of the step."""
    growth = 2.0 ** (attempt - 1)
    step = min(config.retry_backoff_max_seconds, config.retry_backoff_seconds * growth)
    return step * random.uniform(0.5, 1.0)


async def _retrying(config: OdooConfig, run: Callable[[], Awaitable[T]]) -> T:
    """Run a read-only connect step under the client's retry policy."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return await run()
        except OdooTransientError:
            if attempt >= config.retry_attempts:
                raise
            await asyncio.sleep(_backoff(config, attempt))


async def _server_version(config: OdooConfig, http: httpx.AsyncClient) -> ServerVersion:
    if config.version != "auto":
        return ServerVersion(config.version, f"{config.version}.0")
    server = await detect_version(http, config.database)
    if server.major not in SUPPORTED_VERSIONS:
        raise OdooConfigError(
            "unsupported version",
            f"Odoo {server.text} is not supported (17, 18 or 19); "
            "set [odoo] version to force a protocol",
            call="common.version",
        )
    return server


async def _authenticate(config: OdooConfig, transport: JsonRpc | Json2) -> int:
    """The account's uid: ``common.authenticate`` on JSON-RPC; on JSON-2 the bearer key is
    checked by the first call, which looks the login up."""
    if isinstance(transport, JsonRpc):
        return await transport.authenticate(config.login)
    found = await transport.execute(
        "res.users", "search_read", [[["login", "=", config.login]]], {"fields": ["id"]}
    )
    if not found:
        raise OdooAccessDenied(
            "odoo.exceptions.AccessDenied",
            f"no user with login {config.login!r} in database {config.database!r}",
            call="res.users.search_read",
        )
    return int(found[0]["id"])


def _options(**values: Any) -> dict[str, Any]:
    """Keyword arguments without the unset ones (Odoo's defaults apply)."""
    return {k: dict(v) if isinstance(v, Mapping) else v for k, v in values.items() if v is not None}


def _records(result: Any) -> list[Record]:
    if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
        raise OdooConfigError(
            "unexpected answer", f"expected a list of records, got {result!r:.200}"
        )
    return result
