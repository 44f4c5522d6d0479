"""What a reconcile run finds: differences with both numbers, their cause and an action."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

Kind = Literal[
    "mo_good",
    "mo_consumed",
    "mo_scrap",
    "events",
    "on_hand",
    "gateway_lag",
    "negative_on_hand",
    "consumed_without_stock",
]
KINDS: tuple[Kind, ...] = (
    "mo_good",
    "mo_consumed",
    "mo_scrap",
    "events",
    "on_hand",
    "gateway_lag",
    "negative_on_hand",
    "consumed_without_stock",
)
Status = Literal["running", "complete", "failed", "interrupted"]


@dataclass(frozen=True, slots=True)
class Difference:
    """One thing the relay and Odoo disagree on, never corrected by the relay itself."""

    kind: Kind
    subject: str
    """What differs: ``WH/MO/00012 BOLT``, ``BOLT at WH/Stock/Shelf 1``, a gateway id."""
    relay: float | None
    """The relay's number (what it applied or expects), None for a business exception."""
    odoo: float | None
    """Odoo's number now."""
    cause: str
    action: str
    detail: dict[str, Any] = field(default_factory=dict)
    """Further numbers (reserved and available on hand, event ids)."""


@dataclass(frozen=True, slots=True)
class Report:
    """One run: when, over what, what differed, and the Odoo calls it took."""

    id: int
    started_at: datetime
    finished_at: datetime | None
    status: Status
    scope: dict[str, Any]
    differences: tuple[Difference, ...]
    odoo_calls: dict[str, int]
    checked: dict[str, int]
    error: str | None = None

    def counts(self) -> dict[str, int]:
        """Differences per kind (every kind present, zero when none)."""
        found: dict[str, int] = dict.fromkeys(KINDS, 0)
        for difference in self.differences:
            found[difference.kind] += 1
        return found

    def to_json(self) -> dict[str, Any]:
        """The report as JSON (``cloud-relay reconcile --json``)."""
        return {
            "id": self.id,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "status": self.status,
            "scope": self.scope,
            "checked": self.checked,
            "odoo_calls": self.odoo_calls,
            "counts": self.counts(),
            "differences": [asdict(d) for d in self.differences],
            "error": self.error,
        }


def difference_from_json(data: dict[str, Any]) -> Difference:
    """A difference stored by :meth:`Report.to_json`."""
    return Difference(
        kind=data["kind"],
        subject=str(data["subject"]),
        relay=data.get("relay"),
        odoo=data.get("odoo"),
        cause=str(data.get("cause", "")),
        action=str(data.get("action", "")),
        detail=dict(data.get("detail") or {}),
    )
