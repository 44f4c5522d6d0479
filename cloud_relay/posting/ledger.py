"""What the writer has applied to one posting key, kept with the key in the posting store.

For a manufacturing order the ledger holds the cumulative quantities the plant floor reported
and the absolute values the relay last wrote into Odoo. Writes are absolute (``qty_producing =
12``, not ``+3``), so repeating one after a crash changes nothing, and a value in Odoo that is
neither what the relay last wrote nor what it was about to write was changed by someone else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Two quantities closer than this are the same: Odoo rounds quantities to the unit's
#: precision (0.01 for Units by default), so 0.333 written reads back as 0.33.
TOLERANCE = 0.0051


def same(a: float | None, b: float | None) -> bool:
    """Whether two quantities are equal at Odoo's precision (None only equals None)."""
    if a is None or b is None:
        return a is b
    return abs(a - b) < TOLERANCE


def line_key(product: str, lot: str | None) -> str:
    """The ledger key of a component (and lot)."""
    return f"{product}\x00{lot}" if lot else product


def split_line_key(key: str) -> tuple[str, str | None]:
    """``(product, lot)`` of a :func:`line_key`."""
    product, _, lot = key.partition("\x00")
    return product, lot or None


@dataclass
class OrderLedger:
    """The state of one MO as the relay has it (the current one after a backorder split)."""

    mo_id: int | None = None
    mo_name: str | None = None
    produced: float = 0.0
    """Cumulative production reported for the current MO."""
    producing_written: float | None = None
    """``qty_producing`` the relay last wrote (None: never)."""
    lot: str | None = None
    """Lot of the finished product the relay set."""
    consumed: dict[str, float] = field(default_factory=dict)
    """Cumulative consumption reported, by :func:`line_key`."""
    written: dict[str, float] = field(default_factory=dict)
    """Component quantity the relay last wrote, by :func:`line_key`."""
    open_logs: dict[str, int] = field(default_factory=dict)
    """Time logs the relay opened and has not closed, by work order id."""
    done: bool = False
    """The relay marked the MO done (no backorder followed)."""
    closed: list[dict[str, Any]] = field(default_factory=list)
    """MOs of this order the relay already marked done before a backorder took over."""
    scrapped: float = 0.0
    """Total quantity scrapped against the order (all products)."""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrderLedger:
        """The ledger stored as ``data`` (``{}`` for a new order)."""
        return cls(
            mo_id=data.get("mo_id"),
            mo_name=data.get("mo_name"),
            produced=float(data.get("produced", 0.0)),
            producing_written=data.get("producing_written"),
            lot=data.get("lot"),
            consumed={k: float(v) for k, v in data.get("consumed", {}).items()},
            written={k: float(v) for k, v in data.get("written", {}).items()},
            open_logs={k: int(v) for k, v in data.get("open_logs", {}).items()},
            done=bool(data.get("done", False)),
            closed=list(data.get("closed", [])),
            scrapped=float(data.get("scrapped", 0.0)),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON object for the posting store."""
        return {
            "mo_id": self.mo_id,
            "mo_name": self.mo_name,
            "produced": self.produced,
            "producing_written": self.producing_written,
            "lot": self.lot,
            "consumed": self.consumed,
            "written": self.written,
            "open_logs": self.open_logs,
            "done": self.done,
            "closed": self.closed,
            "scrapped": self.scrapped,
        }

    def start_backorder(self, backorder_id: int, backorder_name: str) -> None:
        """The current MO was closed with a backorder: later events count on the backorder."""
        self.closed.append(
            {"mo_id": self.mo_id, "mo_name": self.mo_name, "produced": self.produced}
        )
        self.mo_id = backorder_id
        self.mo_name = backorder_name
        self.produced = 0.0
        self.producing_written = None
        self.lot = None
        self.consumed = {}
        self.written = {}
        self.open_logs = {}
        self.done = False
