"""Unit conversion as each version's ``uom.uom._compute_quantity`` does it.

- 17/18: ``factor`` is units of this unit per reference unit of its category;
  ``qty / from.factor * to.factor``; a UserError when the categories differ.
- 19: ``factor`` is the unit's size in root units (the end of its ``relative_uom_id`` chain);
  ``qty * from.factor / to.factor``; no compatibility check at all (2 kg of a component in
  Units becomes 2000 Units).

Both round UP to the target unit's ``rounding``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cloud_relay.odoo.sandbox.errors import UserError

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.models.product import Uom

_MAX_CHAIN = 20


def absolute_factor(uoms: Uom, uom_id: int) -> float:
    """19: the unit's size in root units (the product of ``relative_factor`` up its chain)."""
    size, current = 1.0, uom_id
    for _ in range(_MAX_CHAIN):
        parent = uoms.get(current, "relative_uom_id")
        if not parent:
            return size
        size *= float(uoms.get(current, "relative_factor") or 1.0)
        current = int(parent)
    return size


def convert(uoms: Uom, quantity: float, from_uom: int, to_uom: int) -> float:
    """``quantity`` of ``from_uom`` in ``to_uom``, as the version's Odoo computes it."""
    if uoms.env.version >= 19:
        value = quantity * absolute_factor(uoms, from_uom) / absolute_factor(uoms, to_uom)
    else:
        if uoms.get(from_uom, "category_id") != uoms.get(to_uom, "category_id"):
            raise UserError(
                f"The unit of measure {uoms.display_name(from_uom)} defined on the order line "
                f"doesn't belong to the same category as the unit of measure "
                f"{uoms.display_name(to_uom)} defined on the product. Please correct the unit "
                "of measure defined on the order line or on the product. They should belong to "
                "the same category."
            )
        value = (
            quantity
            / float(uoms.get(from_uom, "factor") or 1.0)
            * float(uoms.get(to_uom, "factor") or 1.0)
        )
    return round_up(value, float(uoms.get(to_uom, "rounding") or 0.01))


def round_up(value: float, rounding: float) -> float:
    """Odoo's ``float_round(..., rounding_method='UP')``: away from zero, to a rounding step."""
    if rounding <= 0 or value == 0:
        return value
    normalized = value / rounding
    sign = math.copysign(1.0, normalized)
    epsilon = 2 ** (math.log(abs(normalized), 2) - 52)
    steps = math.ceil(abs(normalized) - epsilon) * sign
    digits = max(0, -math.floor(math.log10(rounding)))
    return round(steps * rounding, digits)
