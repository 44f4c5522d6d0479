"""How a ``/jsonrpc`` request reaches Odoo's services: the ``params`` of the envelope, then
``common``, ``db`` and ``object`` unpacking their ``args`` as Odoo 18 does.

Odoo hands these values to plain Python (``dict(params)``, ``params[0]``, ``int(uid)``,
``*args``), so malformed calls come back as the Python errors that produces; the sandbox runs the
same Python operations to answer with the same texts.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.errors import AccessDenied, DatabaseMissing, PythonError
from cloud_relay.odoo.sandbox.pycall import bind, python, raise_python, splat, type_name

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.dispatch import Sandbox

SERVICES = ("common", "db", "object")
ABOUT = "See http://openerp.com"
_ABSENT: Any = object()


@dataclass(frozen=True)
class ObjectCall:
    """An ``execute_kw``/``execute`` call, unpacked: who calls what with which arguments."""

    uid: int
    model: Any
    method: Any
    args: list[Any]
    kwargs: dict[str, Any]


def request_params(params: Any = _ABSENT) -> tuple[Any, Any, Any]:
    """``service``, ``method``, ``args`` from an envelope's ``params`` (``RPC.jsonrpc``)."""
    named: dict[Any, Any] = python(dict, {} if params is _ABSENT else params)
    wanted = {k: v for k, v in named.items() if k in ("service", "method", "args")}
    return bind("RPC.jsonrpc", _jsonrpc_signature, [], wanted, implicit=1)()


def _jsonrpc_signature(service: Any, method: Any, args: Any) -> tuple[Any, Any, Any]:
    return service, method, args


def service_of(service: Any) -> str:
    """The service named ``service`` (Odoo's dispatcher lookup and its KeyError)."""
    python(hash, service)
    if service not in SERVICES:
        raise PythonError.of(KeyError(service))
    return str(service)


# -- common -----------------------------------------------------------------------------------


def common(sandbox: Sandbox, method: Any, args: Any) -> Any:
    """``odoo.service.common.dispatch``: ``exp_<method>(*args)``."""
    if not isinstance(method, str):
        raise_python(TypeError, f'can only concatenate str (not "{type_name(method)}") to str')
    exposed: dict[str, Callable[..., Any]] = {
        "version": lambda: sandbox.version_info(),
        "about": lambda extended=False: [ABOUT, f"{sandbox.version}.0"] if extended else ABOUT,
        "login": lambda db, login, password: _authenticate(sandbox, db, login, password, None),
        "authenticate": lambda db, login, password, user_agent_env: _authenticate(
            sandbox, db, login, password, user_agent_env
        ),
    }
    func = exposed.get(method)
    if func is None:
        raise PythonError("builtins.Exception", (f"Method not found: {method}",))
    positional = splat(args, f"odoo.service.common.exp_{method}")
    return bind(f"exp_{method}", func, positional, {})()


def _authenticate(sandbox: Sandbox, db: Any, login: Any, password: Any, agent: Any) -> Any:
    check_database(sandbox, db)
    if agent is not None and not isinstance(agent, dict):
        raise_python(TypeError, f"'{type_name(agent)}' object is not a mapping")
    users = sandbox.users()
    found = users.find_login(login) if isinstance(login, str) else None
    if found is None:
        return False
    check_secret(password)
    uid = users.authenticate(login, password)
    return uid if uid is not None else False


def check_database(sandbox: Sandbox, db: Any) -> None:
    """The database check every service does first (``Registry(db)``)."""
    if not db:
        raise_python(AssertionError, "Missing database name")
    if not isinstance(db, str):
        raise_python(AttributeError, f"'{type_name(db)}' object has no attribute 'startswith'")
    if db != sandbox.database:
        raise DatabaseMissing.named(db)


def check_secret(secret: Any) -> None:
    """What the password hashing says of a password that is not text."""
    if secret is None:
        raise_python(AssertionError, "scope and key required")
    if not isinstance(secret, str):
        raise_python(TypeError, f"secret must be unicode or bytes, not {type_name(secret)}")


# -- db ---------------------------------------------------------------------------------------


def db_service(sandbox: Sandbox, method: Any, args: Any) -> Any:
    """``odoo.service.db.dispatch``: the database list and the server version."""
    del args
    if method == "list":
        return [sandbox.database]
    if method == "server_version":
        return f"{sandbox.version}.0"
    raise PythonError("builtins.KeyError", (f"Method not found: {method}",))


# -- object -----------------------------------------------------------------------------------


def object_call(sandbox: Sandbox, method: Any, args: Any) -> ObjectCall:
    """``odoo.service.model.dispatch`` up to the model call: database, credentials, unpacking."""
    if sandbox.version >= 19:
        return _object_call_19(sandbox, method, args)
    db = python(operator.getitem, args, 0)
    uid = python(int, python(operator.getitem, args, 1))
    secret = python(operator.getitem, args, 2)
    check_database(sandbox, db)
    if secret is not None and not isinstance(secret, str):
        check_secret(secret)
    if not sandbox.users().check_credentials(uid, secret):
        raise AccessDenied()
    rest = list(python(operator.getitem, args, slice(3, None)))
    if method == "execute":
        model, name, *call_args = bind("execute", _execute_signature, [db, uid, *rest], {})()
        return ObjectCall(uid, model, name, call_args, {})
    if method == "execute_kw":
        model, name, positional, keywords = bind(
            "execute_kw", _execute_kw_signature, [db, uid, *rest], {}
        )()
        call_args = _star(positional)
        kwargs = splat(keywords or {}, "odoo.service.model.execute", mapping=True)
        return ObjectCall(uid, model, name, call_args, kwargs)
    raise_python(NameError, f"Method not available {method}")


def _object_call_19(sandbox: Sandbox, method: Any, args: Any) -> ObjectCall:
    items = splat(args, "dispatch")
    if len(items) < 5:
        raise_python(
            ValueError, f"not enough values to unpack (expected at least 5, got {len(items)})"
        )
    db, raw_uid, secret, model, name, *rest = items
    check_database(sandbox, db)
    if not secret:
        raise AccessDenied()
    uid = python(int, raw_uid)
    if not sandbox.users().check_credentials(uid, secret):
        raise AccessDenied()
    if method == "execute":
        return ObjectCall(uid, model, name, rest, {})
    if method != "execute_kw":
        raise_python(NameError, f"Method not available {method}")
    positional = _star(rest[0]) if rest else []
    keywords = rest[1] if len(rest) > 1 and rest[1] is not None else {}
    kwargs = splat(keywords, "execute_kw", mapping=True)
    return ObjectCall(uid, model, name, positional, kwargs)


def _star(value: Any) -> list[Any]:
    if isinstance(value, str | list | dict | tuple):
        return list(value)
    raise_python(TypeError, f"Value after * must be an iterable, not {type_name(value)}")


def _execute_signature(db: Any, uid: Any, obj: Any, method: Any, *args: Any) -> list[Any]:
    del db, uid
    return [obj, method, *args]


def _execute_kw_signature(
    db: Any, uid: Any, obj: Any, method: Any, args: Any, kw: Any = None
) -> tuple[Any, Any, Any, Any]:
    del db, uid
    return obj, method, args, kw


def context_of(value: Any) -> dict[str, Any]:
    """The ``context`` keyword as ``with_context`` takes it (falsy means none)."""
    if not value:
        return {}
    if isinstance(value, int | float):
        raise_python(TypeError, f"argument of type '{type_name(value)}' is not iterable")
    result: dict[str, Any] = python(dict, value)
    return result
