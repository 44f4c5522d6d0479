"""The queue's figures kept in memory, so admission and ``stats()`` never touch the disk."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Mirror:
    """What is committed (loaded at open, updated after each commit), plus in-flight estimates."""

    next_seq: int = 1
    acked_seq: int = 0
    seq_ceiling: int = 0
    first_seq: int | None = None
    first_created: float | None = None
    bytes: int = 0
    inflight_bytes: int = 0
    avg_body_bytes: float = 256.0
    dedupe_rows: int = 0
    disk_full: bool = False
    last_error: str | None = None
    enqueued: int = 0
    duplicates: int = 0
    shed: int = 0
    rejected: int = 0
    commits: int = 0

    def pending(self) -> int:
        """Events committed and not yet acknowledged."""
        if self.first_seq is None:
            return 0
        return self.next_seq - self.first_seq

    def used_bytes(self) -> int:
        """Queued bytes plus the estimate for calls waiting for their commit."""
        return self.bytes + self.inflight_bytes
