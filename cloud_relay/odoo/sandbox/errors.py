"""The errors the sandbox raises, named and shaped as Odoo names and shapes them on the wire."""

from __future__ import annotations

from typing import Any, ClassVar

ACCESS_DENIED_MESSAGE = "Access Denied"


class OdooError(Exception):
    """An error answered to the client as ``error.data``: Odoo's class path plus its message."""

    name: ClassVar[str] = "builtins.Exception"
    http_status: ClassVar[int] = 500
    """Status of a JSON-2 answer (Odoo 19): ``http_status`` of the exception class, else 500."""

    def __init__(self, message: str, *arguments: Any) -> None:
        super().__init__(message, *arguments)
        self.message = message
        self.arguments: list[Any] = [message, *arguments]

    @property
    def class_path(self) -> str:
        """``module.Class`` of the exception Odoo would raise (``data.name`` on the wire)."""
        return self.name

    def serialize(self, odoo_version: int) -> dict[str, Any]:
        """The ``serialize_exception`` dict, keys in Odoo's order."""
        last_line = f"{self.class_path}: {self.message}"
        if odoo_version >= 19 and isinstance(self, AccessDenied):
            debug = last_line + "\n"
        else:
            debug = (
                "Traceback (most recent call last):\n"
                '  File "odoo/service/model.py", in retrying\n'
                f"{last_line}\n"
            )
        return {
            "name": self.class_path,
            "debug": debug,
            "message": self.message,
            "arguments": list(self.arguments),
            "context": {},
        }


class UserError(OdooError):
    """A business rule refused the operation."""

    name = "odoo.exceptions.UserError"
    http_status = 422


class ValidationError(UserError):
    """A constraint failed (also every SQL integrity error, rewritten)."""

    name = "odoo.exceptions.ValidationError"


class AccessError(UserError):
    """Access rights or record rules refuse the operation, or a private method was called."""

    name = "odoo.exceptions.AccessError"
    http_status = 403


class AccessDenied(UserError):
    """Bad login, password or API key."""

    name = "odoo.exceptions.AccessDenied"
    http_status = 403

    def __init__(self, message: str = ACCESS_DENIED_MESSAGE) -> None:
        super().__init__(message)


class MissingError(UserError):
    """A record the call names does not exist."""

    name = "odoo.exceptions.MissingError"
    http_status = 404

    @classmethod
    def for_records(cls, model: str, ids: list[int], uid: int) -> MissingError:
        """Odoo's message naming the missing records and the user."""
        ids_repr = repr(tuple(ids))
        return cls(
            f"Record does not exist or has been deleted.\n(Record: {model}{ids_repr}, User: {uid})"
        )


class PythonError(OdooError):
    """Any other Python exception raised while serving a call, shaped as Odoo shapes it.

    Odoo answers every exception alike: ``module.Class`` as the name, the arguments joined by
    newlines as the message (``KeyError('x')`` gives ``x``, not ``'x'``), the raw arguments.
    """

    def __init__(self, class_path: str, arguments: tuple[Any, ...]) -> None:
        message = "\n".join(str(argument) for argument in arguments)
        super().__init__(message)
        self.arguments = list(arguments)
        self._class_path = class_path

    @property
    def class_path(self) -> str:
        return self._class_path

    @classmethod
    def of(cls, exc: BaseException) -> PythonError:
        """The answer for a Python exception (``builtins.TypeError``...)."""
        kind = type(exc)
        module = "builtins" if kind.__module__ == "builtins" else kind.__module__
        return cls(f"{module}.{kind.__name__}", tuple(exc.args))


class PythonValueError(OdooError):
    """A ``ValueError`` from the ORM (unknown field, bad selection value, unknown external id)."""

    name = "builtins.ValueError"


class PythonAttributeError(OdooError):
    """An unknown method."""

    name = "builtins.AttributeError"


class PythonTypeError(OdooError):
    """Arguments that do not fit the method's signature."""

    name = "builtins.TypeError"


class PythonKeyError(OdooError):
    """An unknown RPC service."""

    name = "builtins.KeyError"


class DatabaseMissing(OdooError):
    """The database named in the call does not exist."""

    name = "psycopg2.OperationalError"

    @classmethod
    def named(cls, database: object) -> DatabaseMissing:
        """libpq's message for an unknown database (the server reaches PostgreSQL on loopback)."""
        return cls(
            'connection to server at "127.0.0.1", port 5432 failed: '
            f'FATAL:  database "{database}" does not exist\n'
        )


class SerializationFailure(OdooError):
    """PostgreSQL could not serialize a transaction and the server's retries ran out."""

    name = "psycopg2.errors.SerializationFailure"

    def __init__(self) -> None:
        super().__init__("could not serialize access due to concurrent update\n")


class ConcurrencyError(OdooError):
    """Odoo 19's name for a concurrency failure whose retries ran out."""

    name = "odoo.exceptions.ConcurrencyError"


class InvalidTextRepresentation(OdooError):
    """A non-integer id reached SQL."""

    name = "psycopg2.errors.InvalidTextRepresentation"

    @classmethod
    def for_id(cls, table: str, value: object) -> InvalidTextRepresentation:
        """PostgreSQL's message for a bad id in ``WHERE id IN (...)``, caret included."""
        prefix = f'LINE 1: ..."{table}" WHERE ("{table}"."id" IN (\''
        line = f"{prefix}{value}')) AN..."
        caret = " " * (len(prefix) - 1) + "^"
        return cls(f'invalid input syntax for type integer: "{value}"\n{line}\n{caret}\n')


class HttpError(OdooError):
    """A werkzeug HTTP exception: its status, description and headers travel with it."""

    def __init__(
        self, status: int, description: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(description, status)
        self.status = status
        self.headers = headers or {}

    @property
    def status_code(self) -> int:
        """The HTTP status to answer with."""
        return self.status


class NotFound(HttpError):
    """``werkzeug.exceptions.NotFound``."""

    name = "werkzeug.exceptions.NotFound"
    http_status = 404

    def __init__(self, description: str) -> None:
        super().__init__(404, description)


class Unauthorized(HttpError):
    """``werkzeug.exceptions.Unauthorized`` (bad or missing bearer key)."""

    name = "werkzeug.exceptions.Unauthorized"
    http_status = 401

    def __init__(self, description: str) -> None:
        super().__init__(401, description, {"WWW-Authenticate": "bearer"})


class UnprocessableEntity(HttpError):
    """``werkzeug.exceptions.UnprocessableEntity`` (arguments that do not bind)."""

    name = "werkzeug.exceptions.UnprocessableEntity"
    http_status = 422

    def __init__(self, description: str) -> None:
        super().__init__(422, description)


def http_status_of(error: OdooError) -> int:
    """The status a JSON-2 answer carries for ``error`` (Odoo 19 ``Json2Dispatcher``)."""
    if isinstance(error, HttpError):
        return error.status
    return type(error).http_status
