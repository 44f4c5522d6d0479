"""A flat, indented PLM export (one row per part, a ``level`` column for the depth) read into
a :class:`~wire.bom.BomSubmission`.

Columns (header row, case-insensitive, in any order; unknown columns are ignored):

- ``level`` (required): 0 for the assembly the file releases, n + 1 for a component of the
  nearest row above at level n.
- ``part_number`` (required): the product's ``default_code``; on an operation row, the
  operation's name.
- ``revision``: the revision of a part that has components (required on those rows: each is a
  BOM revision of its own, published before its parent).
- ``quantity``: per one ``quantity`` of the parent (on level 0: the quantity the BOM makes,
  default 1).
- ``unit``: the unit's name in Odoo (``Units``, ``kg``); required on every part row.
- ``kind``: ``part`` (default) or ``operation`` (a routing step of the parent).
- ``operation``: on a part row, the name of the parent's operation consuming it.
- ``workcenter``, ``duration_minutes``: on an operation row.
- ``bom_type``: ``normal`` (default) or ``kit``, for a row with components.
- ``status``, ``effective_at``, ``company``, ``warehouse``, ``operation_type``: for a row with
  components (``status`` defaults to the level-0 row's).

Errors are :class:`~wire.errors.WireValidationError` located as ``row N/column``.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from wire.bom import BomSubmission, parse_submission
from wire.errors import WireValidationError

REQUIRED_COLUMNS = ("level", "part_number")


@dataclass
class _Node:
    row: int
    values: dict[str, str]
    level: int
    children: list[_Node] = field(default_factory=list)

    def get(self, name: str) -> str:
        return self.values.get(name, "").strip()


def parse_bom_csv(text: str) -> BomSubmission:
    """Read the export; every part with components becomes one revision (children first)."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None:
        raise WireValidationError("row 1", "the file is empty")
    header = [name.strip().lower() for name in reader.fieldnames]
    for name in REQUIRED_COLUMNS:
        if name not in header:
            raise WireValidationError("row 1", f"no column {name!r} (columns: {', '.join(header)})")
    roots: list[_Node] = []
    stack: list[_Node] = []
    for number, raw in enumerate(reader, start=2):
        values = {k.strip().lower(): (v or "") for k, v in raw.items() if k is not None}
        if not any(v.strip() for v in values.values()):
            continue
        node = _Node(number, values, _level(number, values.get("level", "")))
        while stack and stack[-1].level >= node.level:
            stack.pop()
        if node.level == 0:
            roots.append(node)
        elif not stack or stack[-1].level != node.level - 1:
            raise WireValidationError(
                f"row {number}/level", f"level {node.level} has no parent at level {node.level - 1}"
            )
        else:
            stack[-1].children.append(node)
        stack.append(node)
    if not roots:
        raise WireValidationError("row 2/level", "no row at level 0")
    status = roots[0].get("status") or "released"
    revisions: list[dict[str, Any]] = []
    for root in roots:
        _collect(root, status, revisions)
    return parse_submission({"revisions": revisions})


def _level(number: int, raw: str) -> int:
    try:
        level = int(raw.strip())
    except ValueError:
        raise WireValidationError(f"row {number}/level", f"{raw!r} is not a whole number") from None
    if level < 0:
        raise WireValidationError(f"row {number}/level", "must be 0 or more")
    return level


def _number(node: _Node, name: str, default: float | None = None) -> float | None:
    raw = node.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise WireValidationError(f"row {node.row}/{name}", f"{raw!r} is not a number") from None


def _collect(node: _Node, status: str, out: list[dict[str, Any]]) -> None:
    """Append the revision of ``node`` after those of its sub-assemblies."""
    if not node.get("revision"):
        raise WireValidationError(f"row {node.row}/revision", "a part with components needs one")
    parts = [c for c in node.children if c.get("kind").lower() != "operation"]
    steps = [c for c in node.children if c.get("kind").lower() == "operation"]
    for child in parts:
        if child.children:
            _collect(child, status, out)
    plant = {
        key: node.get(key) for key in ("company", "warehouse", "operation_type") if node.get(key)
    }
    revision: dict[str, Any] = {
        "product": node.get("part_number"),
        "revision": node.get("revision"),
        "status": node.get("status") or status,
        "quantity": _number(node, "quantity", 1.0),
        "unit": node.get("unit"),
        "type": node.get("bom_type") or "normal",
        "plants": [plant] if plant else [],
        "lines": [_line(child) for child in parts],
        "operations": [
            {
                "name": step.get("part_number"),
                "workcenter": step.get("workcenter"),
                "duration_minutes": _number(step, "duration_minutes", 0.0),
            }
            for step in steps
        ],
    }
    if node.get("effective_at"):
        revision["effective_at"] = node.get("effective_at")
    out.append(revision)


def _line(node: _Node) -> dict[str, Any]:
    line: dict[str, Any] = {
        "product": node.get("part_number"),
        "quantity": _number(node, "quantity"),
        "unit": node.get("unit"),
    }
    if node.get("operation"):
        line["operation"] = node.get("operation")
    if node.children:
        # A leaf's revision is the part's drawing revision, not a BOM of ours.
        line["revision"] = node.get("revision")
    return line
