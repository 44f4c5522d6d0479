"""Who may read the health page and ``/metrics`` when they are served beyond loopback.

A scraper sends ``Authorization: Bearer <token>``; a person's browser answers the basic-auth
prompt, with the configured user name and password or, when only a token is set, any user name
and the token as password, so the page opens in a plain browser without extensions.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from agent.health.config import HealthConfig

#: What a browser shows in its login prompt.
REALM = "edge agent"


@dataclass(frozen=True, slots=True)
class Credentials:
    """The secrets one request must present; none at all leaves the routes open."""

    token: str | None = None
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_config(cls, config: HealthConfig) -> Credentials:
        """Read the configured secrets (files included); raises ConfigError naming the key."""
        return cls(config.resolve_token(), config.username, config.resolve_password())

    @property
    def required(self) -> bool:
        """Whether requests must authenticate at all."""
        return self.token is not None or self.password is not None

    def allow(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value grants access."""
        if not self.required:
            return True
        if authorization is None:
            return False
        scheme, _, value = authorization.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer":
            return self.token is not None and _same(value, self.token)
        if scheme == "basic":
            pair = _basic_pair(value)
            return pair is not None and self._allow_basic(*pair)
        return False

    def _allow_basic(self, username: str, password: str) -> bool:
        if self.password is not None and self.username is not None:
            # Both compared every time, so timing tells nothing about which one was wrong.
            user_ok = _same(username, self.username)
            if _same(password, self.password) and user_ok:
                return True
        return self.token is not None and _same(password, self.token)


def _same(offered: str, expected: str) -> bool:
    return hmac.compare_digest(offered.encode(), expected.encode())


def _basic_pair(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, sep, password = decoded.partition(":")
    return (username, password) if sep else None
