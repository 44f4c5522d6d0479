"""A dry run: what publishing a submission would change against the BOMs Odoo uses today."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cloud_relay.masterdata.catalog import OdooBom
from cloud_relay.masterdata.validate import PlannedBom


@dataclass(frozen=True, slots=True)
class BomDiff:
    product: str
    revision: str
    current: str | None
    """The BOM Odoo picks today (``mrp.bom <id> <reference>``), or None."""
    added: tuple[tuple[str, float], ...]
    removed: tuple[tuple[str, float], ...]
    changed: tuple[tuple[str, float, float], ...]
    """(product code, quantity today, quantity in the revision), in the product's unit."""
    operations_added: tuple[str, ...]
    operations_removed: tuple[str, ...]
    operations_changed: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not (
            self.added
            or self.removed
            or self.changed
            or self.operations_added
            or self.operations_removed
            or self.operations_changed
        )

    def lines(self) -> list[str]:
        """The diff as a person reads it."""
        head = f"{self.product} revision {self.revision} against {self.current or 'no BOM'}:"
        out = [head]
        out += [f"  + {code} {qty:g}" for code, qty in self.added]
        out += [f"  - {code} {qty:g}" for code, qty in self.removed]
        out += [f"  ~ {code} {old:g} -> {new:g}" for code, old, new in self.changed]
        out += [f"  + operation {name}" for name in self.operations_added]
        out += [f"  - operation {name}" for name in self.operations_removed]
        out += [f"  ~ operation {name}" for name in self.operations_changed]
        if self.empty:
            out.append("  (no change)")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "revision": self.revision,
            "current": self.current,
            "added": [{"product": c, "quantity": q} for c, q in self.added],
            "removed": [{"product": c, "quantity": q} for c, q in self.removed],
            "changed": [{"product": c, "from": a, "to": b} for c, a, b in self.changed],
            "operations_added": list(self.operations_added),
            "operations_removed": list(self.operations_removed),
            "operations_changed": list(self.operations_changed),
        }


def diff(plan: PlannedBom, current: OdooBom | None, codes: dict[int, str]) -> BomDiff:
    """``plan`` against ``current``; ``codes`` names Odoo product ids (``default_code``)."""
    now: dict[int, float] = {}
    for product, quantity, _, _ in current.lines if current else ():
        now[product] = now.get(product, 0.0) + quantity
    new: dict[int, float] = {}
    for line in plan.lines:
        new[line.product_id] = new.get(line.product_id, 0.0) + line.quantity
        codes.setdefault(line.product_id, line.code)

    def code(product: int) -> str:
        return codes.get(product, f"product {product}")

    ops_now = {n: (w, m) for n, w, m in current.operations} if current else {}
    ops_new = {op.name: (op.workcenter_id, op.minutes) for op in plan.operations}
    return BomDiff(
        plan.revision.product,
        plan.revision.revision,
        f"mrp.bom {current.id} {current.code}".strip() if current else None,
        tuple((code(p), q) for p, q in new.items() if p not in now),
        tuple((code(p), q) for p, q in now.items() if p not in new),
        tuple((code(p), now[p], q) for p, q in new.items() if p in now and abs(now[p] - q) > 1e-9),
        tuple(n for n in ops_new if n not in ops_now),
        tuple(n for n in ops_now if n not in ops_new),
        tuple(
            n
            for n, (w, m) in ops_new.items()
            if n in ops_now and (ops_now[n][0] != w or abs(ops_now[n][1] - m) > 1e-9)
        ),
    )
