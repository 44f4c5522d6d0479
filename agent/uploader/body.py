"""Batch bodies: the stored event bytes wrapped in the v1 envelope, then compressed.

Events are not decoded or re-encoded here: the canonical bytes written at enqueue are the bytes
the relay receives, so the relay sees exactly what was persisted.
"""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import zstandard

from agent.queue.model import StoredEvent
from wire.batch import encode_batch

Compression = Literal["zstd", "gzip", "none"]

_ZSTD_LEVEL = 3
_GZIP_LEVEL = 6


@dataclass(frozen=True, slots=True)
class OutgoingBatch:
    """One request body ready to sign: ``body`` is what goes on the wire."""

    first_seq: int
    last_seq: int
    count: int
    raw_bytes: int
    body: bytes
    content_encoding: str | None


class BodyEncoder:
    """Builds and compresses batch bodies for one gateway."""

    def __init__(self, gateway_id: str, compression: Compression) -> None:
        self._gateway_id = gateway_id
        self._compression = compression
        self._zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)

    def encode(self, events: Sequence[StoredEvent]) -> OutgoingBatch:
        """Wrap ``events`` (contiguous, in seq order) into a compressed batch body."""
        if not events:
            raise ValueError("a batch needs at least one event")
        first, last = events[0].seq, events[-1].seq
        if last - first + 1 != len(events):
            raise ValueError(f"events {first}..{last} are not contiguous ({len(events)} given)")
        raw = encode_batch(self._gateway_id, first, last, [event.body for event in events])
        body, encoding = self._compress(raw)
        return OutgoingBatch(first, last, len(events), len(raw), body, encoding)

    def _compress(self, raw: bytes) -> tuple[bytes, str | None]:
        if self._compression == "zstd":
            return self._zstd.compress(raw), "zstd"
        if self._compression == "gzip":
            return gzip.compress(raw, compresslevel=_GZIP_LEVEL, mtime=0), "gzip"
        return raw, None
