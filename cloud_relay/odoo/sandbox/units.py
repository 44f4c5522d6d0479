"""The units of measure a fresh Odoo database has, per version, as read from real servers.

18 groups units in ``uom.category`` with ``factor`` = units of this unit per reference unit of
the category (g 1000, kg 1). 19 has no categories: a unit is ``relative_factor`` of its
``relative_uom_id``, and its (stored, computed) ``factor`` is its size in root units (g 1,
kg 1000). Ids and xmlids differ between the versions (kg is 12 on 18 and 16 on 19).
"""

from __future__ import annotations

from typing import NamedTuple


class Unit18(NamedTuple):
    id: int
    xmlid: str
    name: str
    category: int
    factor: float
    uom_type: str


class Unit19(NamedTuple):
    id: int
    xmlid: str
    name: str
    relative_to: int | None
    relative_factor: float
    sequence: int
    active: bool


CATEGORIES_18 = (
    (1, "product_uom_categ_unit", "Unit"),
    (2, "product_uom_categ_kgm", "Weight"),
    (3, "uom_categ_wtime", "Working Time"),
    (4, "uom_categ_length", "Length / Distance"),
    (5, "uom_categ_surface", "Surface"),
    (6, "product_uom_categ_vol", "Volume"),
)

UNITS_18 = (
    Unit18(1, "product_uom_unit", "Units", 1, 1.0, "reference"),
    Unit18(2, "product_uom_dozen", "Dozens", 1, 1 / 12, "bigger"),
    Unit18(3, "product_uom_day", "Days", 3, 1.0, "reference"),
    Unit18(4, "product_uom_hour", "Hours", 3, 8.0, "smaller"),
    Unit18(5, "product_uom_meter", "m", 4, 1.0, "reference"),
    Unit18(6, "product_uom_millimeter", "mm", 4, 1000.0, "smaller"),
    Unit18(7, "product_uom_km", "km", 4, 1 / 1000, "bigger"),
    Unit18(8, "product_uom_cm", "cm", 4, 100.0, "smaller"),
    Unit18(9, "uom_square_meter", "m²", 5, 1.0, "reference"),
    Unit18(10, "product_uom_litre", "L", 6, 1.0, "reference"),
    Unit18(11, "product_uom_cubic_meter", "m³", 6, 1 / 1000, "bigger"),
    Unit18(12, "product_uom_kgm", "kg", 2, 1.0, "reference"),
    Unit18(13, "product_uom_gram", "g", 2, 1000.0, "smaller"),
    Unit18(14, "product_uom_ton", "t", 2, 1 / 1000, "bigger"),
    Unit18(15, "product_uom_lb", "lb", 2, 2.20462, "smaller"),
    Unit18(16, "product_uom_oz", "oz", 2, 35.274, "smaller"),
    Unit18(17, "product_uom_inch", "in", 4, 39.3701, "smaller"),
    Unit18(18, "product_uom_foot", "ft", 4, 3.28084, "smaller"),
    Unit18(19, "product_uom_yard", "yd", 4, 1.09361, "smaller"),
    Unit18(20, "product_uom_mile", "mi", 4, 1 / 1609.34, "bigger"),
    Unit18(21, "uom_square_foot", "ft²", 5, 10.76391, "smaller"),
    Unit18(22, "product_uom_floz", "fl oz (US)", 6, 33.814, "smaller"),
    Unit18(23, "product_uom_qt", "qt (US)", 6, 1.05669, "smaller"),
    Unit18(24, "product_uom_gal", "gal (US)", 6, 1 / 3.78541, "bigger"),
    Unit18(25, "product_uom_cubic_inch", "in³", 6, 61.0237, "smaller"),
    Unit18(26, "product_uom_cubic_foot", "ft³", 6, 1 / 28.3168, "bigger"),
)

UNITS_19 = (
    Unit19(1, "product_uom_unit", "Units", None, 1.0, 100, True),
    Unit19(2, "product_uom_pack_6", "Pack of 6", 1, 6.0, 600, True),
    Unit19(3, "product_uom_dozen", "Dozens", 1, 12.0, 1200, False),
    Unit19(4, "product_uom_hour", "Hours", None, 1.0, 100, True),
    Unit19(5, "product_uom_day", "Days", 4, 8.0, 800, True),
    Unit19(6, "product_uom_minute", "Minutes", 4, 0.0166667, 1, True),
    Unit19(7, "product_uom_millimeter", "mm", None, 1.0, 100, True),
    Unit19(8, "product_uom_cm", "cm", 7, 10.0, 1000, False),
    Unit19(9, "product_uom_meter", "m", 8, 100.0, 1000, True),
    Unit19(11, "uom_square_meter", "m²", None, 1.0, 100, True),
    Unit19(12, "product_uom_millilitre", "ml", None, 1.0, 100, True),
    Unit19(13, "product_uom_litre", "L", 12, 1000.0, 1000, True),
    Unit19(15, "product_uom_gram", "g", None, 1.0, 100, True),
    Unit19(16, "product_uom_kgm", "kg", 15, 1000.0, 1000, True),
    Unit19(17, "product_uom_ton", "Ton", 16, 1000.0, 1000, True),
    Unit19(30, "product_uom_kwh", "KWH", None, 1.0, 100, True),
)


def unit_rows(version: int) -> list[tuple[int, str, dict[str, object]]]:
    """(id, xmlid name in module ``uom``, stored values) of every seeded unit."""
    if version >= 19:
        return [
            (
                u.id,
                u.xmlid,
                {
                    "name": u.name,
                    "rounding": 0.01,
                    "active": u.active,
                    "relative_uom_id": u.relative_to,
                    "relative_factor": u.relative_factor,
                    "sequence": u.sequence,
                },
            )
            for u in UNITS_19
        ]
    return [
        (
            u.id,
            u.xmlid,
            {
                "name": u.name,
                "category_id": u.category,
                "factor": u.factor,
                "rounding": 0.01,
                "uom_type": u.uom_type,
                "active": True,
            },
        )
        for u in UNITS_18
    ]


def category_rows(version: int) -> list[tuple[int, str, str]]:
    """(id, xmlid name in module ``uom``, name) of the seeded categories (none on 19)."""
    return [] if version >= 19 else list(CATEGORIES_18)
