"""Quantities in the product's unit, converted with Odoo's own factors.

Odoo has no public conversion call (``uom.uom._compute_quantity`` is private), so the relay
reads every unit once and computes as Odoo does, per version:

- 17/18: units of one ``category_id`` convert; ``factor`` is units per reference unit, so one
  unit is ``1 / factor`` reference units;
- 19: there are no categories; a unit is ``relative_factor`` of its ``relative_uom_id``, up to a
  root. Units of one root convert, and one unit is the product of the factors up the chain.
  19 itself converts across roots without a word (2 kg of a part in Units became 2000 Units),
  so the relay checks the root itself.

The result is rounded UP to the target unit's rounding, as Odoo's ``float_round`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from cloud_relay.odoo.client import OdooClient
from cloud_relay.posting.lookup import Product, Refused, many2one_id, many2one_name

_MAX_CHAIN = 20


class UnitRefused(Refused):
    """The event's unit cannot be expressed in the product's unit."""


@dataclass(frozen=True, slots=True)
class Unit:
    """One ``uom.uom``: its kind (category or root), size in reference units and rounding."""

    id: int
    name: str
    kind: int
    kind_name: str
    size: float
    rounding: float


class Units:
    """Every unit of one Odoo, read in one call on first use."""

    def __init__(self, client: OdooClient) -> None:
        self._client = client
        self._by_id: dict[int, Unit] = {}
        self._by_name: dict[str, Unit] = {}

    async def _load(self) -> None:
        if self._by_id:
            return
        nineteen = self._client.version >= 19
        fields = (
            ["name", "relative_uom_id", "relative_factor", "rounding"]
            if nineteen
            else ["name", "category_id", "factor", "rounding"]
        )
        rows = await self._client.search_read(
            "uom.uom", [], fields, order="id", context={"active_test": False}
        )
        self._by_id = units_from_rows(rows, nineteen=nineteen)
        for unit in self._by_id.values():
            self._by_name.setdefault(unit.name, unit)

    async def in_product_unit(self, qty: float, unit_name: str | None, product: Product) -> float:
        """``qty`` of ``unit_name`` in the product's unit; UnitRefused naming both units when
        they are of different kinds or Odoo has no such unit."""
        if not unit_name or unit_name == product.uom_name:
            return qty
        await self._load()
        source = self._by_name.get(unit_name)
        target = self._by_id.get(product.uom_id)
        if source is None:
            raise UnitRefused(
                f"unknown unit: Odoo has no unit named {unit_name!r} (product {product.code!r} "
                f"is kept in {product.uom_name!r})"
            )
        if target is None:
            raise UnitRefused(f"the unit of product {product.code!r} is not readable in Odoo")
        return convert(qty, source, target, product.code)


def units_from_rows(rows: list[dict[str, Any]], *, nineteen: bool) -> dict[int, Unit]:
    """Units from ``uom.uom`` rows of 17/18 (category and factor) or 19 (relative chain)."""
    by_id = {int(r["id"]): r for r in rows}
    units: dict[int, Unit] = {}
    for unit_id, row in by_id.items():
        rounding = float(row.get("rounding") or 0.01)
        if nineteen:
            size, current = 1.0, unit_id
            for _ in range(_MAX_CHAIN):
                parent = many2one_id(by_id[current].get("relative_uom_id"))
                if parent is None or parent not in by_id:
                    break
                size *= float(by_id[current].get("relative_factor") or 1.0)
                current = parent
            kind, kind_name = current, f"units based on {by_id[current]['name']}"
        else:
            size = 1.0 / float(row.get("factor") or 1.0)
            kind = many2one_id(row.get("category_id")) or 0
            kind_name = many2one_name(row.get("category_id")) or str(kind)
        units[unit_id] = Unit(unit_id, str(row["name"]), kind, kind_name, size, rounding)
    return units


def convert(qty: float, source: Unit, target: Unit, product_code: str = "") -> float:
    """``qty`` of ``source`` in ``target``, rounded up to the target's rounding."""
    if source.id == target.id:
        return qty
    if source.kind != target.kind:
        raise UnitRefused(
            f"unit {source.name!r} ({source.kind_name}) cannot be converted to {target.name!r} "
            f"({target.kind_name}), the unit of product {product_code!r} in Odoo: they are of "
            "different kinds"
        )
    return round_up(qty * source.size / target.size, target.rounding)


def round_up(value: float, rounding: float) -> float:
    """Odoo's ``float_round(value, precision_rounding=rounding, rounding_method='UP')``."""
    if rounding <= 0 or value == 0:
        return value
    normalized = value / rounding
    epsilon = 2 ** (math.log(abs(normalized), 2) - 52)
    steps = math.copysign(math.ceil(abs(normalized) - epsilon), normalized)
    digits = max(0, -math.floor(math.log10(rounding)))
    return round(steps * rounding, digits)
