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
    def module(self) -> str:
        return self._config.external_id_module

    async def _execute(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return await self._odoo.execute(model, method, *args, **kwargs)

    async def find(self, product: str, revision: str) -> int | None:
        """The id of the BOM published for (product, revision), if any."""
        self.calls += 1
        rows = await self._odoo.search_read(
            "ir.model.data",
            [["module", "=", self.module], ["name", "=", external_name(product, revision)]],
            ["res_id"],
        )
        return int(rows[0]["res_id"]) if rows else None

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

    async def _load(self, plan: PlannedBom, *, linked: bool) -> int:
        columns, data = self.rows(plan, linked=linked)
        result = await self._execute("mrp.bom", "load", columns, data)
        if not result.get("ids"):
            messages = "; ".join(str(m.get("message")) for m in result.get("messages") or [])
            raise BomRejected(f"Odoo refused the mrp.bom load: {messages}")
        return int(result["ids"][0])

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

    async def publish(self, plan: PlannedBom) -> Published:
        """Steps 1-3: the BOM complete in Odoo (archived unless it was current already)."""
        start = self.calls
        rev = plan.revision
        bom_id = await self.find(rev.product, rev.revision)
        if bom_id is not None:
            self.calls += 1
            existing = (await read_boms(self._odoo, [bom_id])).get(bom_id)
            if existing is not None and self.complete(plan, existing):
                return Published(bom_id, existing.fingerprint(), self.calls - start)
            if existing is not None and existing.active:
                raise BomRejected(
                    f"BOM {bom_id} of {rev.product} revision {rev.revision} is active but differs "
                    "from the revision: it was changed in Odoo"
                )
        bom_id = await self._load(plan, linked=False)
        if any(line.operation for line in plan.lines):
            await self._load(plan, linked=True)
        self.calls += 1
        bom = (await read_boms(self._odoo, [bom_id]))[bom_id]
        if not self.complete(plan, bom):
            raise BomRejected(
                f"BOM {bom_id} of {rev.product} revision {rev.revision} is incomplete after load"
            )
        log.info(
            "BOM %s revision %s loaded as mrp.bom %d (archived until made current)",
            rev.product,
            rev.revision,
            bom_id,
            extra={"product": rev.product, "revision": rev.revision},
        )
        return Published(bom_id, bom.fingerprint(), self.calls - start)

    async def picked(self, template_id: int) -> OdooBom | None:
        """The BOM Odoo gives a new MO of the template today (lowest sequence first)."""
        self.calls += 1
        boms = await boms_of_templates(self._odoo, [template_id])
        return next((b for b in boms if b.active), None)

    async def make_current(self, template_id: int, bom_id: int) -> None:
        """Step 4: ``bom_id`` becomes the BOM Odoo picks for the template (idempotent)."""
        self.calls += 1
        active = [b for b in await boms_of_templates(self._odoo, [template_id]) if b.active]
        others = [b for b in active if b.id != bom_id]
        if self._config.activation == "sequence":
            lowest = min((b.sequence for b in others), default=self._config.sequence + 1)
            current = next((b for b in active if b.id == bom_id), None)
            if current is None or (others and current.sequence >= lowest):
                await self._execute(
                    "mrp.bom", "write", [bom_id], {"active": True, "sequence": lowest - 1}
                )
            return
        if not any(b.id == bom_id for b in active):
            await self._execute(
                "mrp.bom", "write", [bom_id], {"active": True, "sequence": self._config.sequence}
            )
        if others:
            await self._execute("mrp.bom", "write", [b.id for b in others], {"active": False})

    async def read(self, bom_id: int) -> OdooBom | None:
        self.calls += 1
        return (await read_boms(self._odoo, [bom_id])).get(bom_id)
