"""The sandbox server minus HTTP: Odoo's ``common`` and ``object`` services and JSON-2 calls.

Each call is one transaction (all or nothing), run under the injected faults: a call that hits a
simulated concurrent update is rolled back and re-run, up to 5 tries, like Odoo's ``retrying``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cloud_relay.odoo.sandbox import services
from cloud_relay.odoo.sandbox.db import Database
from cloud_relay.odoo.sandbox.env import Clock, Env, utc_now
from cloud_relay.odoo.sandbox.errors import (
    AccessDenied,
    AccessError,
    MissingError,
    NotFound,
    OdooError,
    PythonAttributeError,
    PythonError,
    SerializationFailure,
    Unauthorized,
    UnprocessableEntity,
    UserError,
    ValidationError,
)
from cloud_relay.odoo.sandbox.faults import MAX_TRIES, CallPlan, FaultInjector
from cloud_relay.odoo.sandbox.models import MODEL_CLASSES, lookup
from cloud_relay.odoo.sandbox.models.users import User
from cloud_relay.odoo.sandbox.orm import Model, PublicMethod, odoo_qualname, public_method
from cloud_relay.odoo.sandbox.pycall import bind, python, raise_python, type_name
from cloud_relay.odoo.sandbox.registry import Registry
from cloud_relay.odoo.sandbox.seed import ADMIN_UID, CONNECTOR_UID, Accounts, seed

logger = logging.getLogger(__name__)

_BEARER = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)
_KNOWN_ERRORS: dict[str, type[OdooError]] = {
    cls.name: cls for cls in (UserError, ValidationError, AccessError, AccessDenied, MissingError)
}


class HttpFault(Exception):
    """An injected HTTP error: answer ``status`` instead of running the call."""

    def __init__(self, status: int) -> None:
        super().__init__(f"injected HTTP {status}")
        self.status = status


@dataclass(frozen=True)
class SandboxInfo:
    """Where and as whom to reach the sandbox (``login``/``api_key``: the connector account)."""

    odoo_version: int
    database: str
    login: str
    password: str
    api_key: str
    uid: int
    admin_login: str
    admin_password: str
    admin_api_key: str
    admin_uid: int


def new_accounts(admin_password: str = "admin") -> Accounts:
    """Accounts with fresh random API keys (40 hex characters, as Odoo's)."""
    return Accounts(
        admin_login="admin",
        admin_password=admin_password,
        admin_api_key=secrets.token_hex(20),
        connector_login="connector",
        connector_password=secrets.token_hex(12),
        connector_api_key=secrets.token_hex(20),
    )


class Sandbox:
    """One emulated Odoo server (version 17, 18 or 19) with one database."""

    def __init__(
        self,
        odoo_version: int = 18,
        *,
        database: str = "plant",
        accounts: Accounts | None = None,
        faults: FaultInjector | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.registry = Registry(odoo_version, MODEL_CLASSES)
        self.version = odoo_version
        self.database = database
        self.accounts = accounts or new_accounts()
        self.faults = faults or FaultInjector()
        self.clock = clock
        self.db = Database()
        self.registry.declare_tables(self.db)
        seed(self.db, self.registry, self.accounts)

    @property
    def info(self) -> SandboxInfo:
        """Database name and credentials of the two seeded accounts."""
        a = self.accounts
        return SandboxInfo(
            self.version,
            self.database,
            a.connector_login,
            a.connector_password,
            a.connector_api_key,
            CONNECTOR_UID,
            a.admin_login,
            a.admin_password,
            a.admin_api_key,
            ADMIN_UID,
        )

    def env(self, uid: int = ADMIN_UID, context: Mapping[str, Any] | None = None) -> Env:
        """An environment on the sandbox's data, for in-process inspection by tests."""
        return Env(self.db, self.registry, uid, context, clock=self.clock)

    def version_info(self) -> dict[str, Any]:
        """``common.version``."""
        return {
            "server_version": f"{self.version}.0",
            "server_version_info": [self.version, 0, 0, "final", 0, ""],
            "server_serie": f"{self.version}.0",
            "protocol_version": 1,
        }

    def users(self) -> User:
        """``res.users`` as the superuser, for credential checks."""
        users = lookup.users(self.env(ADMIN_UID))
        assert isinstance(users, User)
        return users

    # -- JSON-RPC ---------------------------------------------------------------------------

    async def jsonrpc(self, service: Any, method: Any, args: Any) -> Any:
        """Answer ``{"service", "method", "args"}``; raise OdooError or HttpFault."""
        name = services.service_of(service)
        if name == "common":
            plan = self.faults.plan("common", str(method))
            return await self._under(plan, lambda: services.common(self, method, args))
        if name == "db":
            plan = self.faults.plan("db", str(method))
            return await self._under(plan, lambda: services.db_service(self, method, args))
        items = args if isinstance(args, list) else []
        model = str(items[3]) if len(items) > 3 else ""
        called = str(items[4]) if len(items) > 4 else ""
        plan = self.faults.plan(model, called)
        return await self._under(plan, lambda: self._object(method, args))

    def _object(self, method: Any, args: Any) -> Any:
        call = services.object_call(self, method, args)
        return self.call_kw(call.uid, call.model, call.method, call.args, call.kwargs)

    def call_kw(
        self, uid: int, model: Any, method: Any, args: list[Any], kwargs: dict[str, Any]
    ) -> Any:
        """Odoo's ``call_kw``: ids first for record methods, ``context`` from the kwargs."""
        spec, cls = self._method(model, method, json2=False)
        func_name = str(method)
        kwargs = dict(kwargs)
        if spec.on_records:
            if not args:
                raise_python(IndexError, "tuple index out of range")
            raw_ids, args = args[0], list(args[1:])
        context = services.context_of(kwargs.pop("context", None))
        env = self.env(uid, context)
        instance = cls(env)
        self._check_rights(instance, spec, func_name)
        func = getattr(instance, func_name)
        qualname = odoo_qualname(cls, func_name)
        if spec.on_records:
            checked = instance.check_ids(raw_ids, must_exist=spec.must_exist)
            call = bind(qualname, func, [checked, *args], kwargs)
        else:
            call = bind(qualname, func, args, kwargs, implicit=1)
        result = call()
        env.flush()
        return result

    def _method(self, model: Any, method: Any, *, json2: bool) -> tuple[PublicMethod, type[Model]]:
        python(hash, model)
        if not isinstance(model, str) or not self.registry.has_model(model):
            if json2:
                raise NotFound(f"the model {model!r} does not exist")
            raise UserError(f"Object {model} doesn't exist")
        if not isinstance(method, str):
            raise_python(TypeError, f"attribute name must be string, not '{type_name(method)}'")
        if method.startswith("_"):
            if self.version == 17 and not json2:
                raise AccessError(f"Private methods (such as {method}) cannot be called remotely.")
            raise AccessError(
                f"Private methods (such as '{model}.{method}') cannot be called remotely."
            )
        cls = self.registry.model_class(model)
        spec = public_method(cls, method, self.version)
        if spec is None:
            if json2:
                raise NotFound(f"the method {method!r} does not exist on {model!r}")
            if self.version == 17:
                raise PythonAttributeError(f"type object '{model}' has no attribute '{method}'")
            raise PythonAttributeError(f"The method '{model}.{method}' does not exist")
        return spec, cls

    @staticmethod
    def _check_rights(instance: Model, spec: PublicMethod, method: str) -> None:
        operations = spec.access
        if spec.on_records and method not in ("read", "write", "unlink"):
            operations = ("read", *operations)
        for operation in operations:
            instance.check_access(operation)

    # -- JSON-2 (Odoo 19) ------------------------------------------------------------------------

    async def json2(
        self,
        authorization: str | None,
        database: str | None,
        model: str,
        method: str,
        body: Mapping[str, Any],
    ) -> Any:
        """``POST /json/2/<model>/<method>`` with a bearer key and named arguments."""
        plan = self.faults.plan(model, method)
        return await self._under(
            plan, lambda: self._json2(authorization, database, model, method, dict(body))
        )

    def _json2(
        self,
        authorization: str | None,
        database: str | None,
        model: str,
        method: str,
        body: dict[str, Any],
    ) -> Any:
        if database and database != self.database:
            raise NotFound(f"database {database!r} not found")
        if not authorization:
            raise Unauthorized(
                "User not authenticated, use an API Key with a Bearer Authorization header."
            )
        match = _BEARER.match(authorization)
        keys = lookup.api_keys(self.env(ADMIN_UID))
        uid = keys.owner_of(match.group(1).strip()) if match else None
        if uid is None:
            raise Unauthorized("Invalid apikey")
        spec, cls = self._method(model, method, json2=True)
        ids = body.pop("ids", [])
        context = body.pop("context", None) or {}
        if ids and not spec.on_records:
            raise UnprocessableEntity(f"cannot call {model}.{method} with ids")
        env = self.env(uid, context)
        instance = cls(env)
        self._check_rights(instance, spec, method)
        func = getattr(instance, method)
        qualname = odoo_qualname(cls, method)
        try:
            if spec.on_records:
                checked = instance.check_ids(ids or [], must_exist=spec.must_exist)
                call = bind(qualname, func, [checked], body)
            else:
                call = bind(qualname, func, [], body, implicit=1)
        except PythonError as exc:
            raise UnprocessableEntity(exc.message) from None
        result = call()
        env.flush()
        if method == "create" and isinstance(result, int):
            return [result]
        return result

    # -- faults and transactions -------------------------------------------------------------

    async def _under(self, plan: CallPlan, run: Callable[[], Any]) -> Any:
        if plan.http_status is not None:
            raise HttpFault(plan.http_status)
        if plan.delay_seconds:
            await asyncio.sleep(plan.delay_seconds)
        if plan.error is not None:
            name, message = plan.error
            cls = _KNOWN_ERRORS.get(name) or type("InjectedError", (OdooError,), {"name": name})
            raise cls(message)
        for attempt in range(1, MAX_TRIES + 1):
            conflict = attempt <= plan.conflicts
            try:
                with self.db.lock, self.db.transaction():
                    result = run()
                    if conflict:
                        raise _Conflict
                return result
            except _Conflict:
                if attempt == MAX_TRIES:
                    logger.debug("SERIALIZATION_FAILURE, maximum number of tries reached!")
                    raise SerializationFailure() from None
                wait = random.uniform(0, 2**attempt) * self.faults.backoff_scale
                logger.debug("SERIALIZATION_FAILURE, %s tries left", MAX_TRIES - attempt)
                if wait:
                    await asyncio.sleep(wait)
        raise AssertionError("unreachable")


class _Conflict(Exception):
    """A simulated concurrent update detected at commit."""
