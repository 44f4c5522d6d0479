"""Signature verification of a request against the gateway keys registered in the inbox.

``wire.signing.verify_signature`` asks for keys synchronously; the registry lives in the (async)
inbox, so the key ids named in ``Signature-Input`` are looked up first and handed over as a
mapping. The signature covers the Content-Digest field, not the body, so it is verified before
the body is read: an unsigned, forged, stale or unknown-key upload costs no body memory. Revoked
keys are left out, so they fail exactly like unknown ones (403), but are
reported as revoked.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import http_sf
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from cloud_relay.inbox.store import GatewayKey, InboxStore
from cloud_relay.metrics import RelayMetrics
from wire.errors import UnknownKeyError, WireError
from wire.keys import load_public_key
from wire.signing import SignedHeaders, verify_signature

log = logging.getLogger(__name__)

#: A request naming more key ids than this is not looked up beyond the first few.
MAX_KEY_LOOKUPS = 4


@dataclass(frozen=True, slots=True)
class VerifiedSender:
    """Who signed a request: the key and the gateway it is registered to."""

    key_id: str
    gateway_id: str
    created: int
    role: str = "gateway"


class RevokedKeyError(UnknownKeyError):
    """The request is signed with a key that was registered and has been revoked."""


def signature_key_ids(signature_input: str | None) -> list[str]:
    """The ``keyid`` parameters of a ``Signature-Input`` header, in order (empty if unparseable)."""
    if not signature_input:
        return []
    try:
        members: Any = http_sf.parse(signature_input.encode("latin-1"), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError):
        return []
    if not isinstance(members, dict):
        return []
    key_ids: list[str] = []
    for value in members.values():
        params = value[1] if isinstance(value, tuple) and len(value) == 2 else {}
        key_id = params.get("keyid") if isinstance(params, dict) else None
        if isinstance(key_id, str) and key_id not in key_ids:
            key_ids.append(key_id)
    return key_ids[:MAX_KEY_LOOKUPS]


async def verify_sender(
    store: InboxStore,
    metrics: RelayMetrics,
    method: str,
    url: str,
    headers: Mapping[str, str],
    max_skew_seconds: int,
) -> tuple[VerifiedSender, SignedHeaders]:
    """Verify the signature, before any of the body is read, or raise
    :class:`wire.errors.SignatureError`; the body is then checked with
    :meth:`~wire.signing.SignedHeaders.check_body`.

    Store failures while looking up keys propagate (as :class:`~cloud_relay.errors.RelayError`).
    """
    keys: dict[str, GatewayKey] = {}
    revoked: set[str] = set()
    for key_id in signature_key_ids(headers.get("signature-input")):
        with metrics.timing("get_key"):
            key = await store.get_key(key_id)
        if key is None:
            continue
        if key.revoked_at is not None:
            revoked.add(key_id)
        else:
            keys[key_id] = key
    public_keys: dict[str, Ed25519PublicKey] = {}
    for key_id, key in keys.items():
        try:
            public_keys[key_id] = load_public_key(key.public_key_pem.encode())
        except WireError as exc:
            # An unreadable registered key verifies nothing: the request sees an unknown key.
            log.error(
                "registered key %s cannot be loaded: %s",
                key_id,
                exc,
                extra={"key_id": key_id, "gateway_id": key.gateway_id},
            )
    try:
        signed = verify_signature(
            method, url, headers, public_keys.get, max_skew_seconds=max_skew_seconds
        )
    except UnknownKeyError as exc:
        if revoked:
            raise RevokedKeyError(f"key {sorted(revoked)[0]} is revoked") from exc
        raise
    verified = signed.verified
    key = keys[verified.key_id]
    sender = VerifiedSender(
        key_id=verified.key_id, gateway_id=key.gateway_id, created=verified.created, role=key.role
    )
    return sender, signed
