"""Options of the uplink to the cloud relay (``[relay]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RelayConfig(BaseModel):
    """Where and how batches are uploaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "http://127.0.0.1:8080"
    """Base URL of the cloud relay; batches go to ``<url>/v1/batches``."""
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
    ca_file: Path | None = None
    """CA bundle for the relay's TLS certificate; the system store when unset."""
