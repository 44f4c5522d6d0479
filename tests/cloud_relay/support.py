"""Builders for relay tests: events, batches, keys and signed uploads."""

from __future__ import annotations

import asyncio
import gzip
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud_relay.inbox.store import InboxStore
from wire.batch import BATCH_PATH, encode_batch
from wire.encoding import canonical_json
from wire.ids import new_event_id
from wire.keys import generate_private_key, key_id, public_key_pem
from wire.signing import sign_request

WAIT_SECONDS = 10.0


async def wait_until(
    condition: Callable[[], bool], what: str, within_seconds: float = WAIT_SECONDS
) -> None:
    """Poll ``condition`` until true, failing after ``within_seconds``."""
    deadline = time.monotonic() + within_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def event_dict(gateway_id: str, seq: int, **data: Any) -> dict[str, Any]:
    """A valid ``production.reported`` event as a JSON-ready mapping."""
    return {
        "id": new_event_id(),
        "gateway_id": gateway_id,
        "seq": seq,
        "type": "production.reported",
        "occurred_at": "2025-03-01T08:00:00.000000Z",
        "source": "opcua:ns=2;s=Line1.Count",
        "data": {"order": "MO/001", "qty": 1.0, **data},
    }


def batch_body(gateway_id: str, first_seq: int, count: int, **overrides: Any) -> bytes:
    """A valid batch of ``count`` events from ``first_seq``; ``overrides`` maps index -> data."""
    events = []
    for index in range(count):
        data = overrides.get(f"e{index}", {})
        events.append(canonical_json(event_dict(gateway_id, first_seq + index, **data)))
    return encode_batch(gateway_id, first_seq, first_seq + count - 1, events)


def compress(body: bytes, encoding: str | None) -> bytes:
    """``body`` in the given Content-Encoding."""
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    if encoding == "gzip":
        return gzip.compress(body)
    return body


@dataclass(frozen=True)
class Gateway:
    """A gateway identity for tests: its id and signing key."""

    gateway_id: str
    private_key: Ed25519PrivateKey

    @property
    def key_id(self) -> str:
        return key_id(self.private_key.public_key())

    @property
    def public_pem(self) -> str:
        return public_key_pem(self.private_key.public_key()).decode()


async def register(store: InboxStore, gateway_id: str) -> Gateway:
    """A fresh key, registered for ``gateway_id``."""
    gateway = Gateway(gateway_id, generate_private_key())
    await store.add_key(gateway_id, gateway.key_id, gateway.public_pem)
    return gateway


def signed_headers(
    gateway: Gateway,
    url: str,
    body: bytes,
    *,
    encoding: str | None = None,
    created: int | None = None,
) -> dict[str, str]:
    """Headers of a batch upload signed by ``gateway`` over ``body`` as sent to ``url``."""
    headers = {"Content-Type": "application/json"}
    if encoding:
        headers["Content-Encoding"] = encoding
    headers.update(sign_request("POST", url, body, gateway.private_key, created=created))
    return headers


async def upload(
    client: httpx.AsyncClient,
    base_url: str,
    gateway: Gateway,
    body: bytes,
    *,
    encoding: str | None = None,
    created: int | None = None,
    replace: Mapping[str, str] | None = None,
    send_body: bytes | None = None,
) -> httpx.Response:
    """Sign ``body`` (compressed as ``encoding``) and POST it; ``replace`` overrides headers,
    ``send_body`` sends other bytes than the ones signed."""
    url = base_url + BATCH_PATH
    wire_body = compress(body, encoding)
    headers = signed_headers(gateway, url, wire_body, encoding=encoding, created=created)
    headers.update(replace or {})
    return await client.post(
        url, content=wire_body if send_body is None else send_body, headers=headers
    )


def now_utc() -> datetime:
    return datetime.now(UTC)
