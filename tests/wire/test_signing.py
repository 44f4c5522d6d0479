"""Request signatures: what verifies, what does not, and in which order the checks run."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    MappingKeyResolver,
    algorithms,
)

from wire.errors import (
    BadSignatureError,
    SignatureError,
    StaleSignatureError,
    UnknownKeyError,
    WireError,
)
from wire.keys import generate_private_key, key_id
from wire.signing import (
    VerifiedRequest,
    content_digest,
    sign_request,
    verify_request,
)

URL = "https://relay.example.test/v1/batches"
BODY = b'{"schema_version":1,"gateway_id":"gw-1","first_seq":1,"last_seq":1,"events":[]}'
CREATED = 1_767_225_600


class Keys:
    """A registry of public keys by key id, counting lookups."""

    def __init__(self, *keys: Ed25519PrivateKey) -> None:
        self.known = {key_id(k.public_key()): k.public_key() for k in keys}
        self.lookups: list[str] = []

    def __call__(self, kid: str) -> Ed25519PublicKey | None:
        self.lookups.append(kid)
        return self.known.get(kid)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture
def signed(key: Ed25519PrivateKey) -> dict[str, str]:
    return sign_request("POST", URL, BODY, key, created=CREATED)


def verify(
    headers: dict[str, str],
    keys: Keys,
    *,
    method: str = "POST",
    url: str = URL,
    body: bytes = BODY,
    now: float = CREATED + 1,
) -> VerifiedRequest:
    return verify_request(method, url, headers, body, keys, now=now)


def test_sign_then_verify(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    assert set(signed) == {"Content-Digest", "Signature-Input", "Signature"}
    result = verify(signed, Keys(key))
    assert result == VerifiedRequest(key_id=key_id(key.public_key()), created=CREATED)


def test_signature_input_covers_the_contract(
    key: Ed25519PrivateKey, signed: dict[str, str]
) -> None:
    assert signed["Signature-Input"] == (
        'sig1=("@method" "@target-uri" "content-digest");'
        f'created={CREATED};keyid="{key_id(key.public_key())}";alg="ed25519"'
    )


def test_default_created_is_now(key: Ed25519PrivateKey) -> None:
    headers = sign_request("POST", URL, BODY, key)
    assert verify_request("POST", URL, headers, BODY, Keys(key)).key_id == key_id(key.public_key())


def test_header_names_are_case_insensitive(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    lowered = {name.lower(): value for name, value in signed.items()}
    shouted = {name.upper(): value for name, value in signed.items()}
    assert verify(lowered, Keys(key)) == verify(shouted, Keys(key))


def test_other_request_headers_do_not_matter(
    key: Ed25519PrivateKey, signed: dict[str, str]
) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": "zstd", **signed}
    assert verify(headers, Keys(key)).created == CREATED


def test_given_signature_fields_are_replaced(
    key: Ed25519PrivateKey, signed: dict[str, str]
) -> None:
    stale = {"content-digest": "sha-256=:AAAA:", "signature": "x=:AAAA:", "Accept": "*/*"}
    assert sign_request("POST", URL, BODY, key, created=CREATED, headers=stale) == signed


def test_content_digest_is_rfc9530_sha256() -> None:
    expected = base64.b64encode(hashlib.sha256(BODY).digest()).decode()
    assert content_digest(BODY) == f"sha-256=:{expected}:"
    assert content_digest(b"") == "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"


def test_unsignable_url_is_a_wire_error(key: Ed25519PrivateKey) -> None:
    with pytest.raises(WireError, match="cannot sign"):
        sign_request("POST", "/v1/batches", BODY, key)


def test_tampered_body(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    with pytest.raises(BadSignatureError, match="Content-Digest does not match the body"):
        verify(signed, Keys(key), body=BODY.replace(b'"last_seq":1', b'"last_seq":2'))


def test_tampered_content_digest(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    forged_body = BODY + b" "
    headers = {**signed, "Content-Digest": content_digest(forged_body)}
    with pytest.raises(BadSignatureError, match="does not match the request"):
        verify(headers, Keys(key), body=forged_body)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("PUT", URL),
        ("POST", "https://relay.example.test/v1/batches?replay=1"),
        ("POST", "https://other.example.test/v1/batches"),
        ("POST", "http://relay.example.test/v1/batches"),
        ("POST", "https://relay.example.test:443/v1/batches"),  # same place, other spelling
        ("POST", "https://RELAY.example.test/v1/batches"),
    ],
)
def test_tampered_method_or_url(
    key: Ed25519PrivateKey, signed: dict[str, str], method: str, url: str
) -> None:
    with pytest.raises(BadSignatureError, match="does not match the request"):
        verify(signed, Keys(key), method=method, url=url)


@pytest.mark.parametrize("missing", ["Signature", "Signature-Input", "Content-Digest"])
def test_missing_header(key: Ed25519PrivateKey, signed: dict[str, str], missing: str) -> None:
    del signed[missing]
    with pytest.raises(BadSignatureError, match=f"{missing} header is absent"):
        verify(signed, Keys(key))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("Signature-Input", "sig1=(", "not a structured dictionary"),
        ("Signature-Input", 'sig1=("@method"), sig1=("@method")', "duplicate label"),
        ("Signature-Input", 'sig1="@method"', "not an inner list"),
        ("Signature", 'sig1="abc"', "not a byte sequence"),
        ("Signature", "sig2=:AAAA:", "no member for Signature-Input label 'sig1'"),
        ("Signature", "sig1=:Ä:", "not a structured dictionary"),
    ],
)
def test_malformed_signature_fields(
    key: Ed25519PrivateKey, signed: dict[str, str], field: str, value: str, message: str
) -> None:
    signed[field] = value
    with pytest.raises(BadSignatureError, match=message):
        verify(signed, Keys(key))


def test_more_than_one_signature_is_refused(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    signed["Signature-Input"] += ", " + signed["Signature-Input"].replace("sig1=", "sig2=", 1)
    signed["Signature"] += ", " + signed["Signature"].replace("sig1=", "sig2=", 1)
    with pytest.raises(BadSignatureError, match="exactly one signature"):
        verify(signed, Keys(key))


@pytest.mark.parametrize(
    ("now", "message"),
    [(CREATED + 301, "ago"), (CREATED - 301, "in the future"), (CREATED + 86_400, "ago")],
)
def test_stale_created(
    key: Ed25519PrivateKey, signed: dict[str, str], now: float, message: str
) -> None:
    with pytest.raises(StaleSignatureError, match=message):
        verify(signed, Keys(key), now=now)


@pytest.mark.parametrize("now", [CREATED + 300, CREATED - 300])
def test_created_at_the_edge_of_the_skew_is_accepted(
    key: Ed25519PrivateKey, signed: dict[str, str], now: float
) -> None:
    assert verify(signed, Keys(key), now=now).created == CREATED


def test_skew_is_configurable(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    keys = Keys(key)
    with pytest.raises(StaleSignatureError):
        verify_request("POST", URL, signed, BODY, keys, max_skew_seconds=10, now=CREATED + 11)
    assert verify_request("POST", URL, signed, BODY, keys, max_skew_seconds=10, now=CREATED + 10)


def test_unknown_key(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    keys = Keys(generate_private_key())
    with pytest.raises(UnknownKeyError, match=key_id(key.public_key())):
        verify(signed, keys)
    assert keys.lookups == [key_id(key.public_key())]


def test_unknown_key_costs_no_cryptography(
    key: Ed25519PrivateKey, signed: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("expensive work for an unknown key")

    monkeypatch.setattr(algorithms.ED25519, "verify", forbidden)
    monkeypatch.setattr(ContentDigest, "verify_components", forbidden)
    monkeypatch.setattr(ContentDigest, "verify", forbidden)
    with pytest.raises(UnknownKeyError):
        verify(signed, Keys(), body=BODY * 1000)


def test_checks_run_in_order(key: Ed25519PrivateKey, signed: dict[str, str]) -> None:
    bad_body = BODY + b"x"
    # Unknown key wins over staleness and a bad body; staleness wins over a bad body.
    with pytest.raises(UnknownKeyError):
        verify(signed, Keys(), body=bad_body, now=CREATED + 10_000)
    with pytest.raises(StaleSignatureError):
        verify(signed, Keys(key), body=bad_body, now=CREATED + 10_000)
    # Coverage is checked before the key is looked up.
    keys = Keys()
    signed["Signature-Input"] = signed["Signature-Input"].replace('"@target-uri" ', "")
    with pytest.raises(BadSignatureError, match="does not cover '@target-uri'"):
        verify(signed, keys)
    assert keys.lookups == []


def test_signature_by_another_key_under_the_same_key_id(key: Ed25519PrivateKey) -> None:
    impostor = generate_private_key()
    kid = key_id(key.public_key())
    headers = library_sign(impostor, kid, ("@method", "@target-uri", "content-digest"))
    with pytest.raises(BadSignatureError, match="does not match the request"):
        verify(headers, Keys(key))


@pytest.mark.parametrize(
    ("components", "missing"),
    [
        (("@method", "content-digest"), "@target-uri"),
        (("@target-uri", "content-digest"), "@method"),
        (("@method", "@target-uri"), "content-digest"),
        (("@method", "@path", "@authority", "content-digest"), "@target-uri"),
        (('"content-digest";sf', "@method", "@target-uri"), "content-digest"),
    ],
)
def test_required_component_missing(
    key: Ed25519PrivateKey, components: tuple[str, ...], missing: str
) -> None:
    kid = key_id(key.public_key())
    headers = library_sign(key, kid, components, body=None, digest=content_digest(BODY))
    with pytest.raises(BadSignatureError, match=f"does not cover '{missing}'"):
        verify(headers, Keys(key))


def test_extra_covered_components_are_fine(key: Ed25519PrivateKey) -> None:
    components = ("@method", "@target-uri", "content-digest", "content-type")
    headers = library_sign(key, key_id(key.public_key()), components, content_type=True)
    assert verify(headers, Keys(key)).created == CREATED


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (f";created={CREATED}", "", "no created parameter"),
        (f";created={CREATED}", ';created="soon"', "created parameter is not an integer"),
        (';alg="ed25519"', "", "no alg parameter"),
        (';alg="ed25519"', ';alg="rsa-pss-sha512"', "alg must be 'ed25519'"),
        (';keyid="', ';kid="', "no keyid"),
    ],
)
def test_signature_parameters_are_required(
    key: Ed25519PrivateKey, signed: dict[str, str], old: str, new: str, message: str
) -> None:
    assert old in signed["Signature-Input"]
    signed["Signature-Input"] = signed["Signature-Input"].replace(old, new)
    with pytest.raises(BadSignatureError, match=message):
        verify(signed, Keys(key))


def test_expired_signature_is_stale(key: Ed25519PrivateKey) -> None:
    headers = library_sign(
        key, key_id(key.public_key()), ("@method", "@target-uri", "content-digest"), expires=10
    )
    assert verify(headers, Keys(key), now=CREATED + 9).created == CREATED
    with pytest.raises(StaleSignatureError, match="expired"):
        verify(headers, Keys(key), now=CREATED + 11)


def test_digest_must_include_sha256(key: Ed25519PrivateKey) -> None:
    sha512 = base64.b64encode(hashlib.sha512(BODY).digest()).decode()
    headers = library_sign(
        key,
        key_id(key.public_key()),
        ("@method", "@target-uri", "content-digest"),
        body=None,
        digest=f"sha-512=:{sha512}:",
    )
    with pytest.raises(BadSignatureError, match="no sha-256 member"):
        verify(headers, Keys(key))


def test_every_failure_is_a_signature_error() -> None:
    for error in (BadSignatureError, StaleSignatureError, UnknownKeyError):
        assert issubclass(error, SignatureError)
        assert issubclass(error, WireError)


class _Message:
    def __init__(self, headers: dict[str, str]) -> None:
        self.method = "POST"
        self.url = URL
        self.headers = headers


def library_sign(
    private_key: Ed25519PrivateKey,
    kid: str,
    components: tuple[str, ...],
    *,
    body: bytes | None = BODY,
    expires: int | None = None,
    content_type: bool = False,
    digest: str | None = None,
) -> dict[str, str]:
    """Sign with the library directly, for signatures ``sign_request`` would never make."""
    headers: dict[str, str] = {}
    if content_type:
        headers["Content-Type"] = "application/json"
    if digest is not None:
        headers["Content-Digest"] = digest
    message = _Message(headers)
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={kid: private_key}),
    )
    signer.sign(
        message,
        key_id=kid,
        created=datetime.fromtimestamp(CREATED, UTC),
        expires=None if expires is None else datetime.fromtimestamp(CREATED + expires, UTC),
        label="sig1",
        covered_component_ids=components,
        body=body,
        use_existing_digest=digest is not None,
    )
    return message.headers
