"""HTTP Message Signatures (RFC 9421) over batch uploads, with RFC 9530 Content-Digest.

A gateway signs ``@method``, ``@target-uri`` and ``content-digest`` with ``created``,
``keyid`` (the RFC 7638 thumbprint from :func:`wire.keys.key_id`) and ``alg="ed25519"`` under
the label ``sig1``. The digest is over the body exactly as sent, i.e. after any
``Content-Encoding``; the relay checks it before decompressing.

``@target-uri`` is derived by ``http-message-signatures`` from the URL as given, spelling
preserved: ``scheme://authority`` + path (``/`` when empty) + ``?query`` when present; user
info and fragment are dropped; nothing is lower-cased, no default port is removed, no
percent-encoding is normalised. The relay must therefore verify against the very URL the
gateway used: behind a proxy or load balancer that is the relay's configured public base URL
joined with the request's path and query, not the URL the relay process itself sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import http_sf
from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSignaturesException,
    HTTPMessageSigner,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from wire.errors import BadSignatureError, StaleSignatureError, UnknownKeyError, WireError
from wire.keys import key_id as _key_id

SIGNATURE_LABEL = "sig1"
ALGORITHM = "ed25519"
#: The components every batch signature must cover (``created`` is required besides).
COVERED_COMPONENTS: tuple[str, ...] = ("@method", "@target-uri", "content-digest")
DIGEST_ALGORITHM = "sha-256"
DEFAULT_MAX_SKEW_SECONDS = 300

_SIGNATURE_FIELDS = frozenset({"signature", "signature-input", "content-digest"})


@dataclass(frozen=True)
class VerifiedRequest:
    """What a valid signature proves: which key signed, and when it says it did."""

    key_id: str
    created: int


@dataclass
class _Request:
    """The request view ``http-message-signatures`` resolves components from."""

    method: str
    url: str
    headers: dict[str, str]


class _Verifier(HTTPMessageVerifier):
    """Library verifier whose own clock checks are disabled.

    :func:`verify_request` has already checked ``created`` and ``expires`` against the
    caller's clock and skew, in both directions, before any signature work is done.
    """

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        return None


def content_digest(body: bytes) -> str:
    """RFC 9530 ``Content-Digest`` field value for ``body``: ``sha-256=:<base64>:``."""
    return str(ContentDigest.create(body))


def sign_request(
    method: str,
    url: str,
    body: bytes,
    private_key: Ed25519PrivateKey,
    *,
    created: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Sign a request and return the fields to add: Content-Digest, Signature-Input, Signature.

    ``body`` is the content as sent (after compression). ``headers`` are the request's other
    fields; any Signature, Signature-Input or Content-Digest among them is replaced.
    ``created`` (Unix seconds) defaults to now. Ed25519 is deterministic, so the same
    inputs give the same signature.
    """
    kid = _key_id(private_key.public_key())
    message = _Request(
        method=method,
        url=url,
        headers={k: v for k, v in (headers or {}).items() if k.lower() not in _SIGNATURE_FIELDS},
    )
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: private_key}),
    )
    when = int(time.time()) if created is None else created
    try:
        signer.sign(
            message,
            key_id=kid,
            created=datetime.fromtimestamp(when, UTC),
            label=SIGNATURE_LABEL,
            covered_component_ids=COVERED_COMPONENTS,
            body=body,
        )
    except HTTPMessageSignaturesException as exc:
        raise WireError(f"cannot sign {method} {url}: {exc}") from exc
    return {
        "Content-Digest": message.headers["Content-Digest"],
        "Signature-Input": message.headers["Signature-Input"],
        "Signature": message.headers["Signature"],
    }


def verify_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    *,
    max_skew_seconds: int = DEFAULT_MAX_SKEW_SECONDS,
    now: float | None = None,
) -> VerifiedRequest:
    """Verify a signed request, cheapest checks first, or raise a :class:`SignatureError`.

    Order: signature fields present and parseable, required coverage and ``created``,
    ``alg``, key known (:class:`UnknownKeyError`, before any cryptography or hashing),
    ``created`` within ``max_skew_seconds`` of ``now`` (:class:`StaleSignatureError`), the
    Ed25519 signature, then the body against Content-Digest. ``headers`` may use any case.
    """
    signed = verify_signature(
        method, url, headers, resolve_key, max_skew_seconds=max_skew_seconds, now=now
    )
    signed.check_body(body)
    return signed.verified


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """A request whose signature verified; its body is still to be checked against the signed
    Content-Digest with :meth:`check_body` before it may be trusted."""

    verified: VerifiedRequest
    _check: Callable[[bytes], None] = field(repr=False)

    def check_body(self, body: bytes) -> None:
        """Raise :class:`BadSignatureError` unless ``body`` is the one the digest names."""
        self._check(body)


def verify_signature(
    method: str,
    url: str,
    headers: Mapping[str, str],
    resolve_key: Callable[[str], Ed25519PublicKey | None],
    *,
    max_skew_seconds: int = DEFAULT_MAX_SKEW_SECONDS,
    now: float | None = None,
) -> SignedHeaders:
    """Every check of :func:`verify_request` but the body's: the signature covers the
    Content-Digest field, not the body, so a server can refuse a forged, stale or unknown
    signer before reading a byte of what it sends."""
    fields = _header_fields(headers)
    label, covered, params = _parse_signature_fields(fields)
    _check_coverage(covered, params)
    alg = params.get("alg")
    if alg != ALGORITHM:
        raise BadSignatureError(
            f"Signature-Input alg must be {ALGORITHM!r}, got {alg!r}"
            if alg is not None
            else "Signature-Input has no alg parameter"
        )
    kid = params.get("keyid")
    if not isinstance(kid, str) or not kid:
        raise BadSignatureError("Signature-Input has no keyid string parameter")
    public_key = resolve_key(kid)
    if public_key is None:
        raise UnknownKeyError(f"unknown or revoked key id {kid!r}")
    created: int = params["created"]
    _check_freshness(created, params.get("expires"), max_skew_seconds, now)
    if "content-digest" not in fields:
        raise BadSignatureError("Content-Digest header is absent")

    message = _Request(method=method, url=url, headers=fields)
    verifier = _Verifier(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={kid: public_key}, private_keys={}),
    )
    try:
        results = verifier.verify(message, max_age=None, require_components=COVERED_COMPONENTS)
    except HTTPMessageSignaturesException as exc:
        if isinstance(exc.__cause__, CryptoInvalidSignature):
            raise BadSignatureError(
                f"signature {label!r} does not match the request's method, URL and "
                f"Content-Digest for key id {kid!r}"
            ) from exc
        raise BadSignatureError(f"signature {label!r} cannot be verified: {exc}") from exc

    def check_body(body: bytes) -> None:
        _check_body_digest(fields["content-digest"], body, verifier, message, results)

    return SignedHeaders(VerifiedRequest(key_id=kid, created=created), check_body)


def _header_fields(headers: Mapping[str, str]) -> dict[str, str]:
    """Field values by lower-case name, repeated lines joined with ``, `` (RFC 9110 5.3)."""
    fields: dict[str, str] = {}
    for name, value in headers.items():
        key, value = name.lower(), value.strip(" \t")
        fields[key] = f"{fields[key]}, {value}" if key in fields else value
    return fields


def _parse_dictionary(fields: Mapping[str, str], name: str) -> dict[str, Any]:
    raw = fields.get(name.lower())
    if raw is None:
        raise BadSignatureError(f"{name} header is absent")

    def reject_duplicate(key: str, context: str) -> None:
        if context == "dictionary":
            raise ValueError(f"duplicate label {key!r}")

    try:
        parsed = http_sf.parse(
            raw.encode("ascii"), tltype="dictionary", on_duplicate_key=reject_duplicate
        )
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise BadSignatureError(f"{name} header is not a structured dictionary: {exc}") from exc
    if not isinstance(parsed, dict) or not parsed:
        raise BadSignatureError(f"{name} header is empty")
    return parsed


def _parse_signature_fields(
    fields: Mapping[str, str],
) -> tuple[str, list[tuple[Any, dict[str, Any]]], dict[str, Any]]:
    """Return the one signature's label, covered items and parameters."""
    inputs = _parse_dictionary(fields, "Signature-Input")
    signatures = _parse_dictionary(fields, "Signature")
    if len(inputs) != 1 or len(signatures) != 1:
        raise BadSignatureError(
            f"expected exactly one signature, found labels {sorted(inputs)} / {sorted(signatures)}"
        )
    ((label, (covered, params)),) = inputs.items()
    if label not in signatures:
        raise BadSignatureError(f"Signature has no member for Signature-Input label {label!r}")
    if not isinstance(covered, list):
        raise BadSignatureError(f"Signature-Input {label!r} is not an inner list of components")
    value = signatures[label][0]
    if not isinstance(value, bytes) or not value:
        raise BadSignatureError(f"Signature {label!r} is not a byte sequence")
    return label, covered, params


def _check_coverage(covered: list[tuple[Any, dict[str, Any]]], params: Mapping[str, Any]) -> None:
    plain = {item for item, item_params in covered if isinstance(item, str) and not item_params}
    for component in COVERED_COMPONENTS:
        if component not in plain:
            raise BadSignatureError(f"Signature-Input does not cover {component!r}")
    created = params.get("created")
    if created is None:
        raise BadSignatureError("Signature-Input has no created parameter")
    if type(created) is not int:
        raise BadSignatureError("Signature-Input created parameter is not an integer")


def _check_freshness(created: int, expires: Any, max_skew_seconds: int, now: float | None) -> None:
    current = time.time() if now is None else now
    age = current - created
    if age > max_skew_seconds:
        raise StaleSignatureError(
            f"signature created {age:.0f} s ago, more than the allowed {max_skew_seconds} s"
        )
    if -age > max_skew_seconds:
        raise StaleSignatureError(
            f"signature created {-age:.0f} s in the future, more than the allowed "
            f"{max_skew_seconds} s of clock skew"
        )
    if expires is not None and (type(expires) is not int or expires < current):
        raise StaleSignatureError(f"signature expired (expires={expires!r})")


def _check_body_digest(
    value: str, body: bytes, verifier: _Verifier, message: _Request, results: Any
) -> None:
    """The signed Content-Digest must carry sha-256 and match the body as received."""
    try:
        members = http_sf.parse(value.encode("ascii"), tltype="dictionary")
    except (ValueError, TypeError, UnicodeEncodeError) as exc:
        raise BadSignatureError(f"Content-Digest is malformed: {exc}") from exc
    if not isinstance(members, dict) or DIGEST_ALGORITHM not in members:
        raise BadSignatureError(f"Content-Digest has no {DIGEST_ALGORITHM} member")
    try:
        verifier.verify_body(message, results, body)
    except HTTPMessageSignaturesException as exc:
        raise BadSignatureError("Content-Digest does not match the body as received") from exc
