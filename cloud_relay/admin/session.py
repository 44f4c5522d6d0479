"""Browser sessions for the admin page: a login cookie, a CSRF token bound to it, and the
check that refuses a POST another site's page sent.

A browser cannot send the admin bearer token from a plain form, so the page trades the token for
a signed session cookie. The signing key is derived from the admin token (slowly, with scrypt)
rather than drawn at random per process: every replica behind a load balancer then accepts a
session any of them issued, a restart logs nobody out, and a new token ends every session.
Sessions are stateless, so one lasts until it expires even after logging out elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Literal
from urllib.parse import urlsplit

#: How long a login lasts.
SESSION_MAX_AGE_SECONDS = 12 * 3600
#: How far in the future another replica's clock may have put a session's issue time.
_CLOCK_SLACK_SECONDS = 300
_KEY_LABEL = b"cloud-relay admin page session v1"
#: Sec-Fetch-Site values of a request the page itself (or the person, typing) started.
_SAME_ORIGIN = frozenset({"same-origin", "none"})


@dataclass(frozen=True, slots=True)
class Credential:
    """How a request proved it holds the admin token; ``binding`` is what its CSRF token is
    derived from (the session cookie, or a constant for the bearer header)."""

    kind: Literal["bearer", "session"]
    binding: str


class AdminSessions:
    """Issues and checks session cookies and CSRF tokens for one admin token."""

    def __init__(
        self,
        token: str,
        *,
        max_age_seconds: int = SESSION_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._token = token.encode()
        self.max_age_seconds = max_age_seconds
        self._clock = clock

    @cached_property
    def _key(self) -> bytes:
        # scrypt, so that a stolen cookie is no cheap oracle for guessing a weak token offline.
        return hashlib.scrypt(self._token, salt=_KEY_LABEL, n=2**14, r=8, p=1, dklen=32)

    def token_ok(self, offered: str) -> bool:
        """Whether ``offered`` is the admin token (constant time)."""
        return hmac.compare_digest(offered.encode(), self._token)

    def bearer(self, authorization: str) -> Credential | None:
        """The credential of an ``Authorization`` header carrying the admin bearer token."""
        scheme, _, offered = authorization.partition(" ")
        if scheme.lower() != "bearer" or not self.token_ok(offered.strip()):
            return None
        return Credential("bearer", "bearer")

    def issue(self) -> str:
        """A new session cookie value: issue time, a random nonce and their MAC."""
        payload = f"{int(self._clock())}.{secrets.token_urlsafe(16)}"
        return f"{payload}.{self._mac('session', payload)}"

    def session(self, value: str) -> Credential | None:
        """The credential of a session cookie, None when forged, malformed or expired."""
        payload, _, mac = value.rpartition(".")
        issued, _, nonce = payload.partition(".")
        if not (issued.isascii() and issued.isdigit() and nonce and mac):
            return None
        if not hmac.compare_digest(mac.encode(), self._mac("session", payload).encode()):
            return None
        age = self._clock() - int(issued)
        if not -_CLOCK_SLACK_SECONDS <= age <= self.max_age_seconds:
            return None
        return Credential("session", value)

    def csrf_token(self, credential: Credential) -> str:
        """The token every form of a page shown to ``credential`` carries."""
        return self._mac("csrf", credential.binding)

    def csrf_ok(self, credential: Credential, offered: str) -> bool:
        """Whether a form's token belongs to ``credential`` (constant time)."""
        return hmac.compare_digest(offered.encode(), self.csrf_token(credential).encode())

    def _mac(self, purpose: str, text: str) -> str:
        digest = hmac.new(self._key, f"{purpose}\0{text}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def cross_site(headers: Mapping[str, str]) -> str | None:
    """Why a POST looks sent by another site's page, or None.

    ``Sec-Fetch-Site`` is the browser's own verdict and wins when present; an older browser's
    ``Origin`` must name the host the request was sent to. A request with neither (curl, a
    script) is left to the CSRF token.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:
        return None if site.lower() in _SAME_ORIGIN else f"Sec-Fetch-Site is {site!r}"
    origin = headers.get("origin")
    if origin is None:
        return None
    host = headers.get("host", "").lower()
    if origin == "null" or urlsplit(origin).netloc.lower() != host:
        return f"Origin {origin!r} is not this site"
    return None


def sent_over_https(
    scheme: str, headers: Mapping[str, str], *, behind_tls_proxy: bool = False
) -> bool:
    """Whether the browser reached the page over HTTPS, so the session cookie can be ``Secure``:
    directly, through a proxy that ends TLS as configured (``behind_tls_proxy``), or, failing
    that, as the browser's ``Origin`` tells."""
    return (
        behind_tls_proxy
        or scheme == "https"
        or headers.get("origin", "").lower().startswith("https://")
    )
