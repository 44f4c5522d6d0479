"""Options of the uplink to the cloud relay (``[relay]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator


class RelayConfig(BaseModel):
    """Where and how batches are uploaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "http://127.0.0.1:8080"
    """Base URL of the cloud relay, ``http(s)://host[:port]`` (a path prefix only behind a proxy
    that serves the relay under it); batches go to ``<url>/v1/batches``."""
    batch_max_events: int = Field(default=1000, ge=1, le=100_000)
    """Most events in one batch."""
    batch_max_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Most uncompressed bytes of events in one batch."""
    batch_max_age_ms: int = Field(default=0, ge=0)
    """Longest a batch waits to fill before it is sent; 0 (the default) sends at once.

    Without a wait, batching still grows with the load: events that arrive while a batch is
    in flight all go in the next one, as Nagle's algorithm gathers bytes behind an
    unacknowledged segment."""
    compression: Literal["zstd", "gzip", "none"] = "zstd"
    """Content-Encoding of batch bodies."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Timeout of one upload request."""
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    """First retry delay after a failed upload."""
    backoff_max_seconds: float = Field(default=60.0, gt=0)
    """Cap on the (jittered, doubling) retry delay."""
    probe_interval_seconds: float = Field(default=60.0, ge=0)
    """Seconds of quiet on the link after which the agent checks it with a signed probe (also
    once at start): a wrong URL, an unknown key or a clock that is off shows on the health page
    before there is anything to send. 0 turns probing off."""
    ca_file: Path | None = None
    """CA bundle for the relay's TLS certificate; the system store when unset."""

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return check_relay_url(value)


def check_relay_url(value: str) -> str:
    """``value`` if it is a relay base URL, else a ValueError that says what is wrong."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{value!r} must start with http:// or https://")
    if not parts.hostname:
        raise ValueError(f"{value!r} names no host")
    if port == 0:
        raise ValueError(f"{value!r}: port 0 is not a port")
    if parts.query or parts.fragment or value.rstrip().endswith(("?", "#")):
        raise ValueError(f"{value!r} must not carry a query or fragment")
    path = parts.path.rstrip("/")
    if path.endswith(("/v1", "/v1/batches", "/v1/probe")):
        raise ValueError(
            f"{value!r} ends in an API path: give the relay's base URL "
            "(http(s)://host[:port]); the agent adds /v1/... itself"
        )
    return value
