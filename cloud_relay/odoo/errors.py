"""Odoo's answers sorted once into what the relay does next: retry, park the order, or alarm.

Every error keeps Odoo's exception name (``odoo.exceptions.UserError``) and message for a
person, never the server traceback and never the credentials. :func:`error_from_odoo` sorts the
``error.data`` object of a JSON-RPC answer or the bare error body of a JSON-2 answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cloud_relay.errors import ConfigError, RejectedError, RelayError, TransientError

_CONCURRENCY_NAMES = frozenset(
    {
        "psycopg2.errors.SerializationFailure",
        "psycopg2.errors.LockNotAvailable",
        "psycopg2.errors.DeadlockDetected",
        "psycopg2.extensions.TransactionRollbackError",
        "odoo.exceptions.ConcurrencyError",
        "odoo.exceptions.LockError",
    }
)
_UNAVAILABLE_NAMES = frozenset(
    {
        "psycopg2.OperationalError",
        "psycopg2.InterfaceError",
        "psycopg2.errors.AdminShutdown",
        "psycopg2.errors.CannotConnectNow",
        "psycopg2.errors.TooManyConnections",
        "psycopg2.errors.QueryCanceled",
        "odoo.exceptions.CacheMiss",
    }
)
_AUTH_NAMES = frozenset(
    {
        "odoo.exceptions.AccessDenied",
        "werkzeug.exceptions.Unauthorized",
        "odoo.http.SessionExpiredException",
    }
)
_USER_NAMES = frozenset(
    {"odoo.exceptions.UserError", "odoo.exceptions.RedirectWarning", "odoo.exceptions.Warning"}
)
_DATABASE_MISSING = re.compile(r'database "([^"]*)" does not exist')
_ACCESS_HEADER = re.compile(
    r"You are not allowed to (access|modify|create|delete) '(?P<kind>[^']*)' "
    r"\((?P<model>[\w.]+)\) records\."
)
_ACCESS_GROUP_LINE = re.compile(r"^\t- (.+)$", re.MULTILINE)
_RULE_HEADER = re.compile(r"doesn't have '(\w+)' access to:\n- .*\((?P<model>[\w.]+)\)")
_UNKNOWN_MODEL = re.compile(r"^Object [\w.]+ doesn't exist$")
_PRIVATE_METHOD = re.compile(r"Private methods \(such as '?([\w.]+)'?\) cannot be called")
_MISSING_RECORD = re.compile(r"\(Record: (?P<model>[\w.]+)\((?P<ids>[^)]*)\), User: \d+\)")
_VERB_TO_RIGHT = {"access": "read", "modify": "write", "create": "create", "delete": "unlink"}


class OdooError(RelayError):
    """An answer of Odoo (or of the path to it) that is not a result.

    ``odoo_name`` is Odoo's exception class path (or an HTTP/transport description) and
    ``odoo_message`` its message; ``call`` is ``model.method`` when known.
    """

    def __init__(self, odoo_name: str, odoo_message: str, *, call: str = "") -> None:
        self.odoo_name = odoo_name
        self.odoo_message = odoo_message
        self.call = call
        super().__init__(self._text())

    def _text(self) -> str:
        where = f"{self.call}: " if self.call else ""
        message = self.odoo_message.strip()
        return f"{where}{self.odoo_name}: {message}" if message else f"{where}{self.odoo_name}"

    def for_call(self, call: str) -> OdooError:
        """The same error naming ``call`` (``model.method``) in its text."""
        self.call = call
        self.args = (self._text(),)
        return self


# -- retry ---------------------------------------------------------------------------------


class OdooTransientError(OdooError, TransientError):
    """A failure that may pass: retry later.

    ``may_have_applied`` is False when Odoo certainly did not commit the call (connection
    refused, transaction rolled back), True when it may have (a timeout after sending).
    """

    may_have_applied = False

    def __init__(
        self,
        odoo_name: str,
        odoo_message: str,
        *,
        call: str = "",
        may_have_applied: bool = False,
    ) -> None:
        super().__init__(odoo_name, odoo_message, call=call)
        self.may_have_applied = may_have_applied


class OdooUnavailableError(OdooTransientError):
    """Odoo could not be reached or answered 5xx (connection, timeout, proxy, database down)."""


class OdooConcurrencyError(OdooTransientError):
    """A serialization failure, deadlock or lock that Odoo's own retries did not absorb.

    The transaction was rolled back, so calling again is safe.
    """


# -- park the order --------------------------------------------------------------------------


class OdooRejectedError(OdooError, RejectedError):
    """Odoo refused the call for good as it stands: park the order, keep the message."""


class OdooUserError(OdooRejectedError):
    """``odoo.exceptions.UserError``: a business rule refused the operation."""


class OdooValidationError(OdooUserError):
    """``odoo.exceptions.ValidationError``: a constraint failed (or a unique key clashed)."""


class OdooMissingError(OdooUserError):
    """``odoo.exceptions.MissingError``: a record the call names was deleted or never existed.

    ``model`` and ``ids`` come from Odoo's message when it names them.
    """

    def __init__(self, odoo_name: str, odoo_message: str, *, call: str = "") -> None:
        match = _MISSING_RECORD.search(odoo_message)
        self.model = match["model"] if match else ""
        self.ids: tuple[int, ...] = (
            tuple(int(x) for x in match["ids"].split(",") if x.strip().isdigit()) if match else ()
        )
        super().__init__(odoo_name, odoo_message, call=call)


class OdooAccessError(OdooUserError):
    """``odoo.exceptions.AccessError``: the connector account lacks a right.

    ``right`` (read, write, create, unlink), ``model`` and ``allowed_groups`` are read from
    Odoo's message when it names them, so the text can say what to grant.
    """

    def __init__(self, odoo_name: str, odoo_message: str, *, call: str = "") -> None:
        self.right = ""
        self.model = ""
        self.allowed_groups: tuple[str, ...] = ()
        self.by_record_rule = False
        header = _ACCESS_HEADER.search(odoo_message)
        rule = _RULE_HEADER.search(odoo_message)
        if header:
            self.right = _VERB_TO_RIGHT[header[1]]
            self.model = header["model"]
            self.allowed_groups = tuple(
                g.strip() for g in _ACCESS_GROUP_LINE.findall(odoo_message[header.end() :])
            )
        elif rule:
            self.right = rule[1]
            self.model = rule["model"]
            self.by_record_rule = True
        super().__init__(odoo_name, odoo_message, call=call)

    def _text(self) -> str:
        where = f"{self.call}: " if self.call else ""
        if not self.right:
            return super()._text()
        lacks = f"{where}{self.odoo_name}: the Odoo account lacks the {self.right} right on "
        if self.by_record_rule:
            return f"{lacks}these {self.model} records (record rules)"
        if self.allowed_groups:
            return f"{lacks}{self.model}; groups that grant it: {', '.join(self.allowed_groups)}"
        return f"{lacks}{self.model}; no group grants it"


class OdooCallError(OdooRejectedError):
    """The call itself does not fit this server: unknown model, method or field, bad value or
    argument (``builtins.ValueError``, ``AttributeError``, ``TypeError``, raw SQL errors)."""


class OdooRecordNotFound(OdooRejectedError):
    """A search or read found no record where one was expected (raised by the client)."""

    def __init__(self, model: str, what: str) -> None:
        self.model = model
        self.what = what
        super().__init__("unknown record", f"no {model} {what}")


# -- alarm -------------------------------------------------------------------------------------


class OdooConfigError(OdooError, ConfigError):
    """The relay's Odoo settings do not work: wrong URL, database, version or credentials.

    Neither retrying a call nor parking an order helps; the relay should alarm.
    """


class OdooAccessDenied(OdooConfigError):
    """``odoo.exceptions.AccessDenied`` (or a 401 on JSON-2): the API key or login is wrong,
    expired or revoked."""


# -- sorting -----------------------------------------------------------------------------------


def error_from_odoo(data: Mapping[str, Any], *, call: str = "") -> OdooError:
    """Sort Odoo's serialized exception (``name``, ``message``, ...) into an :class:`OdooError`.

    ``debug`` (the server traceback) is dropped: it is for Odoo's administrators, not for the
    person reading a parked order.
    """
    name = str(data.get("name") or "unknown Odoo error")
    message = data.get("message")
    if not isinstance(message, str):
        message = str(message) if message is not None else ""
    if name in _AUTH_NAMES:
        return OdooAccessDenied(name, message, call=call)
    if name in _CONCURRENCY_NAMES:
        return OdooConcurrencyError(name, message, call=call)
    if name in _UNAVAILABLE_NAMES:
        if _DATABASE_MISSING.search(message):
            return OdooConfigError(name, message, call=call)
        return OdooUnavailableError(name, message, call=call)
    if name == "odoo.exceptions.AccessError":
        if _PRIVATE_METHOD.search(message):
            return OdooCallError(name, message, call=call)
        return OdooAccessError(name, message, call=call)
    if name == "odoo.exceptions.MissingError":
        return OdooMissingError(name, message, call=call)
    if name == "odoo.exceptions.ValidationError":
        return OdooValidationError(name, message, call=call)
    if name in _USER_NAMES:
        if _UNKNOWN_MODEL.match(message):
            return OdooCallError(name, message, call=call)
        return OdooUserError(name, message, call=call)
    return OdooCallError(name, message, call=call)


def error_from_http(status: int, reason: str, *, call: str = "") -> OdooError:
    """Sort an HTTP answer that carries no Odoo error object (a proxy's page, a redirect)."""
    text = f"HTTP {status} {reason}".strip()
    if status == 503 or status == 429:
        return OdooUnavailableError("HTTP error", text, call=call)
    if status >= 500:
        # 502/504 and a bare 500 may come after Odoo ran (and committed) the call.
        return OdooUnavailableError("HTTP error", text, call=call, may_have_applied=True)
    if status in (401, 403):
        return OdooAccessDenied("HTTP error", text, call=call)
    return OdooConfigError("HTTP error", text, call=call)
