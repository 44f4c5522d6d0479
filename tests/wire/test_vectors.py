"""Golden vectors: the committed signed batch must come out byte for byte, and verify.

The files are written by ``vectors/make_vectors.py`` (run by hand); tests only read them.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire.batch import encode_batch, parse_batch
from wire.keys import key_id, load_public_key
from wire.signing import sign_request, verify_request

VECTORS = Path(__file__).parent / "vectors"


def body(vector: dict[str, Any]) -> bytes:
    data: bytes = vector["body"].encode("utf-8")
    return data


def test_sign_request_reproduces_the_vector(
    vector: dict[str, Any], vector_key: Ed25519PrivateKey
) -> None:
    headers = sign_request(
        vector["method"], vector["url"], body(vector), vector_key, created=vector["created"]
    )
    assert headers == vector["headers"]


def test_verify_request_accepts_the_vector(vector: dict[str, Any]) -> None:
    public = load_public_key(VECTORS / vector["public_key_file"])
    registry = {vector["key_id"]: public}
    result = verify_request(
        vector["method"],
        vector["url"],
        vector["headers"],
        body(vector),
        registry.get,
        now=vector["created"] + 60,
    )
    assert (result.key_id, result.created) == (vector["key_id"], vector["created"])
    assert key_id(public) == vector["key_id"]


def test_vector_verifies_without_the_signature_library(vector: dict[str, Any]) -> None:
    """Rebuild the RFC 9421 signature base by hand and check it with plain Ed25519."""
    headers = vector["headers"]
    digest = base64.b64encode(hashlib.sha256(body(vector)).digest()).decode()
    assert headers["Content-Digest"] == f"sha-256=:{digest}:"
    label, params = headers["Signature-Input"].split("=", 1)
    assert label == "sig1"
    base = (
        f'"@method": {vector["method"]}\n'
        f'"@target-uri": {vector["url"]}\n'
        f'"content-digest": {headers["Content-Digest"]}\n'
        f'"@signature-params": {params}'
    )
    assert base == vector["signature_base"]
    signature = headers["Signature"].removeprefix("sig1=:").removesuffix(":")
    public = load_public_key(VECTORS / vector["public_key_file"])
    public.verify(base64.b64decode(signature), base.encode("ascii"))


def test_vector_body_is_a_canonical_two_event_batch(vector: dict[str, Any]) -> None:
    batch = parse_batch(body(vector))
    assert len(batch.events) == 2
    rebuilt = encode_batch(
        batch.gateway_id, batch.first_seq, batch.last_seq, [e.encode() for e in batch.events]
    )
    assert rebuilt == body(vector)
