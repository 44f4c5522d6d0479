"""What a BOM submission names, looked up in Odoo in a few batched reads: products by
``default_code``, units, work centres, companies, warehouses and operation types, and the BOMs
Odoo uses today for the submitted products."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cloud_relay.masterdata.units import UnitBook
from cloud_relay.odoo.client import OdooClient
from wire.bom import BomRevision

BOM_FIELDS = [
    "code",
    "sequence",
    "active",
    "type",
    "product_tmpl_id",
    "product_id",
    "product_qty",
    "product_uom_id",
    "bom_line_ids",
    "operation_ids",
    "company_id",
]
LINE_FIELDS = ["bom_id", "product_id", "product_qty", "product_uom_id", "operation_id"]
OPERATION_FIELDS = ["bom_id", "name", "workcenter_id", "time_cycle_manual"]


def many2one(value: Any) -> int | None:
    """The id of a many2one as ``read`` answers it (``[id, name]`` or ``false``)."""
    if isinstance(value, list | tuple) and value:
        return int(value[0])
    return None


@dataclass(frozen=True, slots=True)
class Product:
    id: int
    code: str
    template_id: int
    uom_id: int
    company_id: int | None


@dataclass(frozen=True, slots=True)
class OdooBom:
    """A BOM as Odoo holds it: header, lines and operations, for diffs and drift checks."""

    id: int
    code: str
    sequence: int
    active: bool
    template_id: int
    variant_id: int | None
    lines: tuple[tuple[int, float, int, str], ...]
    """(product id, quantity, unit id, operation name or ''), in Odoo's order."""
    operations: tuple[tuple[str, int, float], ...]
    """(name, work centre id, minutes)."""

    def fingerprint(self) -> str:
        lines = sorted(f"{p}:{q:.6f}:{u}:{o}" for p, q, u, o in self.lines)
        ops = sorted(f"{n}:{w}:{m:.6f}" for n, w, m in self.operations)
        return "|".join(lines) + "#" + "|".join(ops)


@dataclass
class Catalog:
    """The Odoo side of one validation, by the names the submission uses."""

    version: int
    units: UnitBook
    products: dict[str, Product] = field(default_factory=dict)
    workcenters: dict[str, int] = field(default_factory=dict)
    companies: dict[str, int] = field(default_factory=dict)
    warehouses: dict[str, int] = field(default_factory=dict)
    operation_types: dict[tuple[int | None, str], int] = field(default_factory=dict)
    """(warehouse id or None, name) -> manufacturing operation type id."""


async def load_catalog(odoo: OdooClient, revisions: Sequence[BomRevision]) -> Catalog:
    """Everything the revisions name, in six reads whatever their size."""
    codes = sorted(
        {r.product for r in revisions} | {line.product for r in revisions for line in r.lines}
    )
    unit_rows = await odoo.search_read(
        "uom.uom", [], UnitBook.fields(odoo.version), context={"active_test": False}
    )
    catalog = Catalog(odoo.version, UnitBook(odoo.version, unit_rows))
    for row in await odoo.search_read(
        "product.product",
        [["default_code", "in", codes]],
        ["default_code", "product_tmpl_id", "uom_id", "company_id"],
    ):
        code = str(row["default_code"])
        catalog.products.setdefault(
            code,
            Product(
                int(row["id"]),
                code,
                many2one(row["product_tmpl_id"]) or 0,
                many2one(row["uom_id"]) or 0,
                many2one(row.get("company_id")),
            ),
        )
    names = sorted({op.workcenter for r in revisions for op in r.operations})
    if names:
        for row in await odoo.search_read(
            "mrp.workcenter", ["|", ["name", "in", names], ["code", "in", names]], ["name", "code"]
        ):
            catalog.workcenters.setdefault(str(row["name"]), int(row["id"]))
            if row.get("code"):
                catalog.workcenters.setdefault(str(row["code"]), int(row["id"]))
    plants = [p for r in revisions for p in r.plants]
    if any(p.company for p in plants):
        for row in await odoo.search_read("res.company", [], ["name"]):
            catalog.companies[str(row["name"])] = int(row["id"])
    if any(p.warehouse or p.operation_type for p in plants):
        for row in await odoo.search_read("stock.warehouse", [], ["name", "code"]):
            catalog.warehouses[str(row["name"])] = int(row["id"])
            catalog.warehouses.setdefault(str(row["code"]), int(row["id"]))
        for row in await odoo.search_read(
            "stock.picking.type",
            [["code", "=", "mrp_operation"]],
            ["name", "warehouse_id"],
            context={"active_test": False},
        ):
            key = (many2one(row.get("warehouse_id")), str(row["name"]))
            catalog.operation_types[key] = int(row["id"])
    return catalog


async def read_boms(odoo: OdooClient, ids: Iterable[int]) -> dict[int, OdooBom]:
    """BOMs with their lines and operations, archived ones too."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    context = {"active_test": False}
    heads = await odoo.search_read("mrp.bom", [["id", "in", wanted]], BOM_FIELDS, context=context)
    return await _assemble(odoo, heads)


async def boms_of_templates(
    odoo: OdooClient, template_ids: Iterable[int], *, active_only: bool = True
) -> list[OdooBom]:
    """The BOMs of these templates, in the order Odoo picks them (sequence, variant, id)."""
    wanted = sorted(set(template_ids))
    if not wanted:
        return []
    domain: list[Any] = [["product_tmpl_id", "in", wanted]]
    context = None if active_only else {"active_test": False}
    heads = await odoo.search_read("mrp.bom", domain, BOM_FIELDS, context=context)
    boms = list((await _assemble(odoo, heads)).values())
    return sorted(boms, key=lambda b: (b.sequence, 0 if b.variant_id else 1, b.id))


async def _assemble(odoo: OdooClient, heads: list[dict[str, Any]]) -> dict[int, OdooBom]:
    line_ids = [i for h in heads for i in h.get("bom_line_ids") or []]
    op_ids = [i for h in heads for i in h.get("operation_ids") or []]
    context = {"active_test": False}
    lines = (
        await odoo.search_read("mrp.bom.line", [["id", "in", line_ids]], LINE_FIELDS)
        if line_ids
        else []
    )
    ops = (
        await odoo.search_read(
            "mrp.routing.workcenter", [["id", "in", op_ids]], OPERATION_FIELDS, context=context
        )
        if op_ids
        else []
    )
    op_names = {int(o["id"]): str(o["name"]) for o in ops}
    by_bom_lines: dict[int, list[tuple[int, float, int, str]]] = {}
    for line in sorted(lines, key=lambda r: int(r["id"])):
        op = many2one(line.get("operation_id"))
        by_bom_lines.setdefault(many2one(line["bom_id"]) or 0, []).append(
            (
                many2one(line["product_id"]) or 0,
                float(line["product_qty"]),
                many2one(line["product_uom_id"]) or 0,
                op_names.get(op, "") if op else "",
            )
        )
    by_bom_ops: dict[int, list[tuple[str, int, float]]] = {}
    for step in sorted(ops, key=lambda r: int(r["id"])):
        by_bom_ops.setdefault(many2one(step["bom_id"]) or 0, []).append(
            (
                str(step["name"]),
                many2one(step["workcenter_id"]) or 0,
                float(step.get("time_cycle_manual") or 0.0),
            )
        )
    result: dict[int, OdooBom] = {}
    for head in heads:
        bom_id = int(head["id"])
        result[bom_id] = OdooBom(
            bom_id,
            str(head.get("code") or ""),
            int(head.get("sequence") or 0),
            bool(head.get("active")),
            many2one(head["product_tmpl_id"]) or 0,
            many2one(head.get("product_id")),
            tuple(by_bom_lines.get(bom_id, [])),
            tuple(by_bom_ops.get(bom_id, [])),
        )
    return result
