"""``[retention]``: how long posted events are kept."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class RetentionConfig(BaseModel):
    """What is pruned, how much at a time and how often."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    keep_days: float = Field(default=30.0, gt=0)
    """Inbox events and applied postings older than this (and covered by a complete reconcile
    run) are removed; dead letters and the audit log are kept."""
    batch: int = Field(default=500, ge=1, le=100_000)
    """Rows removed per transaction, so ingest and posting never wait long."""
    interval_seconds: float = Field(default=600.0, gt=0)
    """How often pruning runs while the relay runs."""
