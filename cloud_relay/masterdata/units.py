"""Odoo's units of measure, read once per validation, and conversion with Odoo's own factors.

Odoo offers no public conversion call, and the meaning of ``uom.uom.factor`` is reversed
between the versions, so each has its own arithmetic:

- 17/18: units are of one kind when they share ``category_id``; ``factor`` is how many of the
  unit make one reference unit of the category; ``to = qty / from.factor * to.factor``.
- 19: no categories; units are of one kind when their ``relative_uom_id`` chains end at the
  same root; ``factor`` is the unit's size in root units; ``to = qty * from.factor / to.factor``.

Both round the result UP to the target unit's ``rounding`` (``float_round(..., 'UP')``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

FIELDS_18 = ["name", "category_id", "factor", "rounding", "active"]
FIELDS_19 = ["name", "relative_uom_id", "factor", "rounding", "active"]
#: Relative error below which a converted quantity counts as exact (float noise).
_EXACT = 1e-9


@dataclass(frozen=True, slots=True)
class Unit:
    id: int
    name: str
    factor: float
    rounding: float
    kind: int
    """18: the category id; 19: the id of the root of the unit's chain."""
    kind_name: str
    active: bool


@dataclass(frozen=True, slots=True)
class Conversion:
    """``quantity`` of ``source`` as Odoo would store it in ``target``."""

    quantity: float
    exact: float
    rounded: float
    source: Unit
    target: Unit

    @property
    def lossless(self) -> bool:
        return abs(self.rounded - self.exact) <= _EXACT * max(1.0, abs(self.exact))

    def describe(self) -> str:
        return (
            f"{self.quantity:g} {self.source.name} is {self.exact:.10g} {self.target.name}, which "
            f"Odoo rounds to {self.rounded:g} {self.target.name} (rounding "
            f"{self.target.rounding:g})"
        )


def _id(value: Any) -> int | None:
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


class UnitBook:
    """The units of one Odoo database, by id and by name."""

    def __init__(self, version: int, rows: Iterable[Mapping[str, Any]]) -> None:
        self.version = version
        raw = {int(r["id"]): r for r in rows}
        units: dict[int, Unit] = {}
        for unit_id, row in raw.items():
            if version >= 19:
                root = unit_id
                for _ in range(32):
                    parent = _id(raw[root].get("relative_uom_id")) if root in raw else None
                    if parent is None or parent not in raw:
                        break
                    root = parent
                kind, kind_name = root, f"the {raw[root]['name']} family"
            else:
                category = row.get("category_id")
                kind = _id(category) or 0
                kind_name = str(category[1]) if isinstance(category, list) else str(kind)
            units[unit_id] = Unit(
                unit_id,
                str(row["name"]),
                float(row.get("factor") or 1.0),
                float(row.get("rounding") or 0.01),
                kind,
                kind_name,
                bool(row.get("active", True)),
            )
        self._units = units
        self._by_name: dict[str, Unit] = {}
        for unit in sorted(units.values(), key=lambda u: (not u.active, u.id)):
            self._by_name.setdefault(unit.name.casefold(), unit)

    @staticmethod
    def fields(version: int) -> list[str]:
        return FIELDS_19 if version >= 19 else FIELDS_18

    def get(self, unit_id: int) -> Unit | None:
        return self._units.get(unit_id)

    def named(self, name: str) -> Unit | None:
        """The unit called ``name`` (active ones first), case-insensitively."""
        return self._by_name.get(name.strip().casefold())

    def names(self) -> list[str]:
        return sorted(u.name for u in self._units.values() if u.active)

    @staticmethod
    def same_kind(a: Unit, b: Unit) -> bool:
        return a.kind == b.kind

    def convert(self, quantity: float, source: Unit, target: Unit) -> Conversion:
        """Odoo's ``_compute_quantity`` for units of one kind (the caller checks the kind)."""
        if source.id == target.id:
            return Conversion(quantity, quantity, quantity, source, target)
        if self.version >= 19:
            exact = quantity * source.factor / target.factor
        else:
            exact = quantity / source.factor * target.factor
        return Conversion(quantity, exact, round_up(exact, target.rounding), source, target)


def round_up(value: float, rounding: float) -> float:
    """``float_round(value, precision_rounding=rounding, rounding_method='UP')``."""
    if rounding <= 0 or value == 0:
        return value
    normalized = value / rounding
    epsilon = 2 ** (math.log2(abs(normalized)) - 52)
    steps = math.ceil(abs(normalized) - epsilon)
    digits = max(0, -math.floor(math.log10(rounding)))
    return round(math.copysign(steps * rounding, value), digits)
