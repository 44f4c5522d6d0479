"""Options of the durable store-and-forward queue (``[queue]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class QueueConfig(BaseModel):
    """How events are kept on disk until the relay has acknowledged them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: Path | None = None
    """SQLite file; defaults to ``<gateway.state_dir>/queue.db``."""
    durability: Literal["power", "process"] = "power"
    """``power``: fsync every commit (synchronous=FULL); ``process``: survive a crash only."""
    flush_interval_ms: float = Field(default=5.0, ge=0, le=1000)
    """Longest an event waits for others to share its commit."""
    commit_max_events: int = Field(default=2000, ge=1, le=100_000)
    """Most events written in one transaction."""
    max_bytes: int = Field(default=1024**3, ge=64 * 1024)
    """Ceiling on the bytes of queued events."""
    on_full: Literal["reject", "shed_telemetry"] = "reject"
    """``reject``: pause sources; ``shed_telemetry``: drop signal.sampled first, then pause."""
    shed_telemetry_at_fraction: float = Field(default=0.9, gt=0, le=1)
    """With ``shed_telemetry``, telemetry is dropped once this fraction of max_bytes is used."""
    reject_table_rows: int = Field(default=1000, ge=10)
    """Rejected payloads kept with their reason for people to inspect (oldest go first)."""
    dedupe_keys_kept: int = Field(default=100_000, ge=100)
    """Source dedupe keys remembered, newest first."""
    disk_reserve_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    """Disk space held in ``<queue>.reserve`` and released when an ack finds the disk full, so
    it can still be written and the queue drains; 0 turns it off."""
    full_probe_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    """After the disk filled up, how often a small write checks whether space has returned."""
