"""Errors raised by the wire contract: every one names what was wrong and where."""

from __future__ import annotations


class WireError(Exception):
    """Root of every error raised by :mod:`wire`."""


class WireValidationError(WireError):
    """An event or batch does not match the v1 wire format.

    ``location`` is a JSON-Pointer-like path to the offending field (``/events/3/data/qty``).
    """

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location or '/'}: {message}")
        self.location = location
        self.message = message


class SignatureError(WireError):
    """A request signature could not be verified."""


class BadSignatureError(SignatureError):
    """The signature, its parameters or the content digest do not match the request."""


class StaleSignatureError(SignatureError):
    """The signature's ``created`` time is outside the allowed clock skew."""


class UnknownKeyError(SignatureError):
    """The signature names a key id that is not registered (or is revoked)."""
