"""Writing one planned revision into Odoo, exactly once, never half visible to production.

1. ``load`` the BOM archived (``active`` false, so no new MO can pick it), with its operations
   and lines, each bound to an external id made from product and revision in the same call:
   a retry after a crash finds and updates them instead of creating a second BOM.
2. A second ``load`` of the same rows plus the lines' operations (Odoo cannot point a line at an
   operation created in the same call). Both loads are upserts, safe to repeat.
3. Read it back and check it is complete (every line and operation, linked).
4. Make it current: activate it, then archive the BOMs Odoo used before (``archive``), or give
   it a ``sequence`` below theirs (``sequence``). Until step 4 the previous BOM stays current.

A BOM already complete (found by its external id) skips the loads, so a BOM made current is
never archived again by a retry.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloud_relay.masterdata.catalog import OdooBom, boms_of_templates, read_boms
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.store import BomRejected
from cloud_relay.masterdata.validate import PlannedBom
from cloud_relay.odoo.client import OdooClient

log = logging.getLogger(__name__)

_HEAD = [
    "id",
    "product_tmpl_id/.id",
    "product_qty",
    "product_uom_id/.id",
    "code",
    "type",
    "sequence",
    "consumption",
    "picking_type_id/.id",
]
#: Only sent when the revision names a company: an empty cell would write False, not the
#: default company, and Odoo then refuses operations on a work centre of a company.
_COMPANY = "company_id/.id"
_OPERATION = [
    "operation_ids/id",
    "operation_ids/name",
    "operation_ids/workcenter_id/.id",
    "operation_ids/time_cycle_manual",
    "operation_ids/sequence",
]
_LINE = [
    "bom_line_ids/id",
    "bom_line_ids/product_id/.id",
    "bom_line_ids/product_qty",
    "bom_line_ids/product_uom_id/.id",
    "bom_line_ids/sequence",
]
_LINK = "bom_line_ids/operation_id/id"


@dataclass(frozen=True, slots=True)
class Published:
    bom_id: int
    fingerprint: str
    calls: int


def external_name(product: str, revision: str) -> str:
    """A stable identifier for (product, revision): readable part plus a hash of both."""
    slug = re.sub(r"[^a-z0-9]+", "_", f"{product}_{revision}".lower()).strip("_")[:40]
    digest = hashlib.sha256(f"{product}\0{revision}".encode()).hexdigest()[:10]
    return f"bom_{slug}_{digest}"


def _text(value: Any) -> str:
    if value is None or value is False:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


class Publisher:
    """Loads planned revisions into one Odoo and makes them current."""

    def __init__(self, odoo: OdooClient, config: BomConfig) -> None:
        self._odoo = odoo
        self._config = config
        self.calls = 0

    @property
    def odoo(self) -> OdooClient:
        return self._odoo

    @property
    def module(self) -> str:
        return self._config.external_id_module

    async def _execute(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self._odoo.execute(model, method, *args, **kwargs)

    def rows(self, plan: PlannedBom, *, linked: bool) -> tuple[list[str], list[list[str]]]:
        rev = plan.revision
        name = f"{self.module}.{external_name(rev.product, rev.revision)}"
        head = [
            name,
            str(plan.template_id),
            _text(plan.quantity),
            str(plan.uom_id),
            rev.revision,
            plan.bom_type,
            str(self._config.sequence),
            "flexible",
            _text(plan.picking_type_id),
        ]
        own = [*_HEAD]
        if plan.company_id is not None:
            own.append(_COMPANY)
            head.append(str(plan.company_id))
        columns = [*own, "active", *_OPERATION, *_LINE] + ([_LINK] if linked else [])
        ops = [
            [f"{name}_op{k}", op.name, str(op.workcenter_id), _text(op.minutes), str((k + 1) * 10)]
            for k, op in enumerate(plan.operations)
        ]
        op_xmlids = {op.name: f"{name}_op{k}" for k, op in enumerate(plan.operations)}
        lines = [
            [
                f"{name}_l{j}",
                str(line.product_id),
                _text(line.quantity),
                str(line.uom_id),
                str(j + 1),
                *([op_xmlids.get(line.operation or "", "")] if linked else []),
            ]
            for j, line in enumerate(plan.lines)
        ]
        width_op, width_line = len(_OPERATION), len(_LINE) + (1 if linked else 0)
        data = []
        for i in range(max(len(ops), len(lines), 1)):
            first = [*head, "False"] if i == 0 else [""] * (len(own) + 1)
            op = ops[i] if i < len(ops) else [""] * width_op
            line = lines[i] if i < len(lines) else [""] * width_line
            data.append(first + op + line)
        return columns, data

    async def _load(self, plans: Sequence[PlannedBom], *, linked: bool) -> list[int]:
        """One ``load`` of every plan (one call per company column shape); their BOM ids."""
        ids: dict[int, int] = {}
        for with_company in (False, True):
            group = [
                (i, p) for i, p in enumerate(plans) if (p.company_id is not None) == with_company
            ]
            if not group:
                continue
            columns: list[str] = []
            data: list[list[str]] = []
            for _, plan in group:
                columns, rows = self.rows(plan, linked=linked)
                data += rows
            result = await self._execute("mrp.bom", "load", columns, data)
            if not result.get("ids"):
                messages = "; ".join(str(m.get("message")) for m in result.get("messages") or [])
                raise BomRejected(f"Odoo refused the mrp.bom load: {messages}")
            for (index, _), bom_id in zip(group, result["ids"], strict=True):
                ids[index] = int(bom_id)
        return [ids[i] for i in range(len(plans))]

    def complete(self, plan: PlannedBom, bom: OdooBom) -> bool:
        """Whether Odoo holds every line and operation of the plan, lines linked."""
        wanted_lines = sorted(
            (line.product_id, round(line.quantity, 6), line.uom_id, line.operation or "")
            for line in plan.lines
        )
        got_lines = sorted((p, round(q, 6), u, o) for p, q, u, o in bom.lines)
        wanted_ops = sorted((op.name, op.workcenter_id) for op in plan.operations)
        got_ops = sorted((n, w) for n, w, _ in bom.operations)
        return wanted_lines == got_lines and wanted_ops == got_ops

    async def find_all(self, plans: Sequence[PlannedBom]) -> dict[str, int]:
        """External id name -> BOM id of the plans already in Odoo, in one call."""
        names = [external_name(p.revision.product, p.revision.revision) for p in plans]
        self.calls += 1
        rows = await self._odoo.search_read(
            "ir.model.data",
            [["module", "=", self.module], ["model", "=", "mrp.bom"], ["name", "in", names]],
            ["name", "res_id"],
        )
        return {str(r["name"]): int(r["res_id"]) for r in rows}

    async def find(self, product: str, revision: str) -> int | None:
        """The id of the BOM published for (product, revision), if any."""
        self.calls += 1
        rows = await self._odoo.search_read(
            "ir.model.data",
            [["module", "=", self.module], ["name", "=", external_name(product, revision)]],
            ["res_id"],
        )
        return int(rows[0]["res_id"]) if rows else None

    async def publish(self, plans: Sequence[PlannedBom]) -> list[Published]:
        """Steps 1-3 for every plan at once: two ``load`` calls whatever their number, then
        one read-back. A BOM already complete is left as it is (it may be current)."""
        start = self.calls
        found = await self.find_all(plans)
        self.calls += 3
        existing = await read_boms(self._odoo, found.values())
        todo: list[PlannedBom] = []
        for plan in plans:
            rev = plan.revision
            bom = existing.get(found.get(external_name(rev.product, rev.revision), 0))
            if bom is not None and self.complete(plan, bom):
                continue
            if bom is not None and bom.active:
                raise BomRejected(
                    f"mrp.bom {bom.id} of {rev.product} revision {rev.revision} is active but "
                    "differs from the revision: it was changed in Odoo"
                )
            todo.append(plan)
        bom_ids = {
            external_name(p.revision.product, p.revision.revision): i
            for p, i in zip(todo, await self._load(todo, linked=False) if todo else [], strict=True)
        }
        linked = [p for p in todo if any(line.operation for line in p.lines)]
        if linked:
            await self._load(linked, linked=True)
        for name, bom_id in found.items():
            bom_ids.setdefault(name, bom_id)
        self.calls += 3
        boms = await read_boms(self._odoo, bom_ids.values())
        out: list[Published] = []
        for plan in plans:
            rev = plan.revision
            bom_id = bom_ids[external_name(rev.product, rev.revision)]
            bom = boms.get(bom_id)
            if bom is None or not self.complete(plan, bom):
                raise BomRejected(
                    f"mrp.bom {bom_id} of {rev.product} revision {rev.revision} is incomplete "
                    "after load"
                )
            out.append(Published(bom_id, bom.fingerprint(), self.calls - start))
        log.info(
            "%d BOM(s) loaded (archived until made current) in %d Odoo calls",
            len(plans),
            self.calls - start,
        )
        return out

    async def picked(self, template_id: int) -> OdooBom | None:
        """The BOM Odoo gives a new MO of the template today (lowest sequence first)."""
        self.calls += 1
        boms = await boms_of_templates(self._odoo, [template_id])
        return next((b for b in boms if b.active), None)

    async def make_current(self, pairs: Sequence[tuple[int, int]]) -> None:
        """Step 4: each ``(template, bom)`` becomes what Odoo picks for the template
        (idempotent). ``archive``: one write activates them all (one transaction in Odoo, so a
        multi-level BOM switches as one unit), one write archives the BOMs used before."""
        templates = {template for template, _ in pairs}
        ours = {bom for _, bom in pairs}
        self.calls += 3
        boms = await boms_of_templates(self._odoo, templates, active_only=False)
        active = [b for b in boms if b.active]
        if self._config.activation == "sequence":
            for template, bom_id in pairs:
                others = [b for b in active if b.template_id == template and b.id != bom_id]
                lowest = min((b.sequence for b in others), default=self._config.sequence + 1)
                current = next((b for b in active if b.id == bom_id), None)
                if current is None or (others and current.sequence >= lowest):
                    await self._execute(
                        "mrp.bom", "write", [bom_id], {"active": True, "sequence": lowest - 1}
                    )
            return
        dormant = sorted(bom for bom in ours if not any(b.id == bom and b.active for b in boms))
        if dormant:
            values = {"active": True, "sequence": self._config.sequence}
            await self._execute("mrp.bom", "write", dormant, values)
        previous = sorted(b.id for b in active if b.id not in ours)
        if previous:
            await self._execute("mrp.bom", "write", previous, {"active": False})

    async def read(self, bom_id: int) -> OdooBom | None:
        self.calls += 1
        return (await read_boms(self._odoo, [bom_id])).get(bom_id)
