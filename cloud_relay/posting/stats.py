"""What the posting worker (the "Odoo writer") reports about itself: one frozen snapshot for
/metrics, /healthz, the admin page and the demo."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PostingStats:
    """What the writer did since start, for /metrics, the admin page and the demo."""

    state: str
    """``posting``, ``standby`` (another replica holds the lock), ``connecting``,
    ``odoo unavailable``, ``odoo refuses``, ``inbox unavailable``, ``store unavailable`` (the
    posting store failed a call) or ``restarting`` (a run crashed; its supervisor restarts it)."""
    last_error: str | None
    events_posted: int
    steps: int
    refusals: int
    dead_lettered: int
    transient_errors: int
    odoo_calls: int
    odoo_version: str | None
    pending: int
    """Events waiting to be posted (all orders), as of the last look (about once a second)."""
    dead_letters: int
    """Dead letters not yet replayed or discarded."""
    parked_orders: int
    """Orders Odoo refuses now."""
    healthy: bool = True
    """The writer made progress or reported itself well within ``[writer] stall_seconds``."""
    restarts: int = 0
    """Times the writer crashed (or returned) and its supervisor started it again."""
    last_crash: str | None = None
    """The exception of the last crash, one line."""
