"""Request bodies: read with a size cap, then undo ``Content-Encoding`` with a cap on the result.

Decompression is streamed and stops as soon as the output passes the cap, so a small body that
inflates to gigabytes (a decompression bomb) costs at most ``max_decoded_bytes`` of memory.
Supported encodings: ``zstd``, ``gzip`` and ``identity`` (or no header); anything else,
including a list of several encodings, is refused with 415.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import AsyncIterator
from typing import Protocol

import zstandard

from cloud_relay.errors import RejectedError

SUPPORTED_ENCODINGS = ("zstd", "gzip", "identity")
#: Largest zstd window accepted: the 8 MiB every decoder is expected to support (RFC 8878).
MAX_ZSTD_WINDOW_BYTES = 8 * 1024 * 1024
_CHUNK_BYTES = 64 * 1024


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class BodyTooLargeError(RejectedError):
    """The body, as sent or once decoded, is past its cap (413)."""

    def __init__(self, message: str, *, decoded: bool) -> None:
        super().__init__(message)
        self.decoded = decoded


class UnsupportedEncodingError(RejectedError):
    """The ``Content-Encoding`` is not one the relay decodes (415)."""


class MalformedEncodingError(RejectedError):
    """The body is not valid data of its declared ``Content-Encoding`` (422)."""


async def read_capped(
    content_length: str | None, chunks: AsyncIterator[bytes], max_bytes: int
) -> bytes:
    """Collect a request body, refusing it by its ``Content-Length`` or as soon as it passes
    ``max_bytes`` while streaming (a missing or lying length is caught by counting)."""
    declared = content_length.strip() if content_length is not None else ""
    if declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLargeError(
            f"body of {int(declared)} bytes is over the limit of {max_bytes}", decoded=False
        )
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLargeError(f"body is over the limit of {max_bytes} bytes", decoded=False)
        parts.append(chunk)
    return b"".join(parts)


def normalise_encoding(header: str | None) -> str:
    """The one supported coding named by a ``Content-Encoding`` header, or raise 415."""
    value = (header or "identity").strip().lower() or "identity"
    if value not in SUPPORTED_ENCODINGS:
        raise UnsupportedEncodingError(
            f"Content-Encoding {value[:40]!r} is not supported; use one of "
            + ", ".join(SUPPORTED_ENCODINGS)
        )
    return value


def decode_body(body: bytes, encoding: str, max_decoded_bytes: int) -> bytes:
    """Undo ``encoding`` (from :func:`normalise_encoding`), refusing output past the cap."""
    if encoding == "identity":
        if len(body) > max_decoded_bytes:
            raise _too_large(max_decoded_bytes)
        return body
    if encoding == "zstd":
        decompressor = zstandard.ZstdDecompressor(max_window_size=MAX_ZSTD_WINDOW_BYTES)
        try:
            with decompressor.stream_reader(io.BytesIO(body), read_across_frames=True) as reader:
                return _drain(reader, max_decoded_bytes)
        except zstandard.ZstdError as exc:
            raise MalformedEncodingError(f"body is not valid zstd: {exc}") from exc
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(body), mode="rb") as reader:
            return _drain(reader, max_decoded_bytes)
    except (OSError, EOFError, zlib.error) as exc:
        raise MalformedEncodingError(f"body is not valid gzip: {exc}") from exc


def _drain(reader: _Readable, max_bytes: int) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        chunk = reader.read(_CHUNK_BYTES)
        if not chunk:
            return b"".join(parts)
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        parts.append(chunk)


def _too_large(max_bytes: int) -> BodyTooLargeError:
    return BodyTooLargeError(f"decoded body is over the limit of {max_bytes} bytes", decoded=True)
