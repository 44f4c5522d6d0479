"""schemathesis hooks (``SCHEMATHESIS_HOOKS``): make generated batch uploads get past the door.

Unsigned, every generated batch would stop at 401. A request that carries all three signature
headers gets its body compressed as its ``Content-Encoding`` says and is signed with a
registered gateway's real key, so the fuzzer reaches decoding and validation. Requests lacking
a signature header are sent as generated, so missing-header checks still see them refused.
"""

from __future__ import annotations

import gzip
import os
from typing import Any

import requests
import schemathesis
import zstandard

from wire.batch import BATCH_PATH
from wire.keys import load_private_key
from wire.signing import sign_request

KEY_ENV = "RELAY_TEST_SIGNING_KEY"
_SIGNATURE_HEADERS = ("signature", "signature-input", "content-digest")


class _BatchSigner(requests.auth.AuthBase):
    def __init__(self) -> None:
        self._key = load_private_key(os.environ[KEY_ENV])

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        present = {name.lower() for name in request.headers}
        if not all(name in present for name in _SIGNATURE_HEADERS):
            return request
        body = request.body or b""
        raw = body.encode() if isinstance(body, str) else body
        assert isinstance(raw, bytes) and request.url is not None
        encoding = request.headers.get("Content-Encoding", "")
        raw = _compress(raw, encoding if isinstance(encoding, str) else encoding.decode())
        request.body = raw
        request.headers["Content-Length"] = str(len(raw))
        for name, value in sign_request("POST", request.url, raw, self._key).items():
            request.headers[name] = value
        return request


def _compress(raw: bytes, encoding: str) -> bytes:
    coding = encoding.strip().lower()
    if coding == "zstd":
        return zstandard.ZstdCompressor().compress(raw)
    if coding == "gzip":
        return gzip.compress(raw)
    return raw


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    if case.operation.method.upper() == "POST" and case.operation.path == BATCH_PATH:
        kwargs["auth"] = _BatchSigner()
