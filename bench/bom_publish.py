"""BOM publishing: Odoo calls per BOM line and time, beside a naive line-by-line create.

Run by hand: ``python3 bench/bom_publish.py [--lines 500] [--levels 5] [--branching 2]
[--leaves 3]``. Each run starts a fresh Odoo 18 sandbox in this process, loads the products,
and publishes two submissions through the relay's own path (validate against Odoo, store,
approve, publish: ``load`` archived with external ids, a second ``load`` linking lines to
operations, read back, make current), on a temporary SQLite store:

- a flat BOM of ``--lines`` component lines and 5 operations;
- a tree ``--levels`` deep, every assembly with ``--branching`` sub-assemblies and ``--leaves``
  bought components, published bottom-up as one unit.

Calls are what the sandbox counted. Beside each, in the same run and sandbox, a naive
publisher makes the same BOMs one record at a time: one ``mrp.bom.create``, one
``mrp.routing.workcenter.create`` per operation, one ``mrp.bom.line.create`` per line (with its
operation), and nothing to find them again after a crash. Times are wall-clock on this machine
with the sandbox sharing the process, so compare the two side by side, not across machines.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud_relay.masterdata import service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.flow import publish_submission
from cloud_relay.masterdata.sqlite import SqliteBomStore
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.sandbox import SandboxHandle, running_sandbox
from wire.bom import BomSubmission, parse_submission

OPERATIONS = 5


@dataclass
class Bench:
    handle: SandboxHandle
    http: httpx.AsyncClient
    odoo: OdooClient
    store: SqliteBomStore
    workcenter: int

    async def x(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        info = self.handle.info
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {
                "service": "object",
                "method": "execute_kw",
                "args": [
                    self.handle.database,
                    2,
                    info.admin_api_key,
                    model,
                    method,
                    list(args),
                    kwargs,
                ],
            },
        }
        body = (await self.http.post("/jsonrpc", json=payload)).json()
        assert "error" not in body, body
        return body["result"]

    def calls(self) -> int:
        return sum(self.handle.faults.calls().values())


def flat(lines: int, top: str) -> BomSubmission:
    ops = [
        {"name": f"Op {k}", "workcenter": "WC", "duration_minutes": 5} for k in range(OPERATIONS)
    ]
    rows = [
        {
            "product": f"P{i:05d}",
            "quantity": 1 + i % 7,
            "unit": "Units",
            "operation": f"Op {i % OPERATIONS}",
        }
        for i in range(lines)
    ]
    revision = {
        "product": top,
        "revision": "A",
        "status": "released",
        "unit": "Units",
        "lines": rows,
        "operations": ops,
    }
    return parse_submission({"revisions": [revision]})


def tree(levels: int, branching: int, leaves: int, prefix: str) -> tuple[BomSubmission, int]:
    """The submission, bottom-up, and how many lines it has in all."""
    revisions: list[dict[str, Any]] = []
    total = 0

    def assembly(path: str, depth: int) -> str:
        nonlocal total
        code = f"{prefix}{path}"
        lines: list[dict[str, Any]] = []
        if depth < levels - 1:
            for b in range(branching):
                child = assembly(f"{path}.{b}", depth + 1)
                lines.append(
                    {
                        "product": child,
                        "quantity": 1,
                        "unit": "Units",
                        "revision": "A",
                        "operation": "Op 0",
                    }
                )
        for leaf in range(leaves):
            lines.append(
                {"product": f"P{leaf:05d}", "quantity": 2, "unit": "Units", "operation": "Op 0"}
            )
        ops = [{"name": "Op 0", "workcenter": "WC", "duration_minutes": 3}]
        revisions.append(
            {
                "product": code,
                "revision": "A",
                "status": "released",
                "unit": "Units",
                "lines": lines,
                "operations": ops,
            }
        )
        total += len(lines)
        return code

    assembly("0", 0)
    return parse_submission({"revisions": revisions}), total


async def products(bench: Bench, codes: list[str]) -> dict[str, int]:
    columns = ["id", "name", "default_code", "type", "is_storable", "uom_id/id"]
    rows = [
        [f"bench.p_{c.replace('.', '_').lower()}", c, c, "consu", "True", "uom.product_uom_unit"]
        for c in codes
    ]
    ids: list[int] = []
    for start in range(0, len(rows), 500):
        answer = await bench.x("product.product", "load", columns, rows[start : start + 500])
        assert answer["messages"] == [], answer
        ids += answer["ids"]
    return dict(zip(codes, ids, strict=True))


async def publish(bench: Bench, submission: BomSubmission) -> tuple[int, float]:
    config = BomConfig()
    bench.handle.faults.reset_calls()
    started = time.perf_counter()
    outcome = await service.submit(
        bench.store, bench.odoo, config, submission, by="eng", via="bench"
    )
    await service.approve(bench.store, config, outcome.id, by="lead", reason=None)
    row = await bench.store.run(lambda tx: s.get_submission(tx, outcome.id))
    assert row is not None
    assert await publish_submission(bench.store, bench.odoo, config, row)
    return bench.calls(), time.perf_counter() - started


async def naive(bench: Bench, submission: BomSubmission, ids: dict[str, int]) -> tuple[int, float]:
    """The same BOMs, one record per call (the products renamed so Odoo keeps both)."""
    bench.handle.faults.reset_calls()
    started = time.perf_counter()
    templates: dict[str, int] = {}
    for rev in submission.revisions:
        product = (
            await bench.x("product.product", "read", [ids[rev.product]], fields=["product_tmpl_id"])
        )[0]
        templates[rev.product] = product["product_tmpl_id"][0]
        bom = await bench.x(
            "mrp.bom",
            "create",
            {"product_tmpl_id": templates[rev.product], "code": "naive", "product_uom_id": 1},
        )
        operations = {}
        for op in rev.operations:
            operations[op.name] = await bench.x(
                "mrp.routing.workcenter",
                "create",
                {
                    "bom_id": bom,
                    "name": op.name,
                    "workcenter_id": bench.workcenter,
                    "time_cycle_manual": op.duration_minutes,
                },
            )
        for line in rev.lines:
            await bench.x(
                "mrp.bom.line",
                "create",
                {
                    "bom_id": bom,
                    "product_id": ids[line.product],
                    "product_qty": line.quantity,
                    "product_uom_id": 1,
                    "operation_id": operations.get(line.operation or "", False),
                },
            )
    return bench.calls(), time.perf_counter() - started


async def bench_run(args: argparse.Namespace) -> dict[str, Any]:
    big = flat(args.lines, "BIG")
    deep, deep_lines = tree(args.levels, args.branching, args.leaves, "T")
    with tempfile.TemporaryDirectory(prefix="bench-bom-") as tmp:
        async with (
            running_sandbox(18) as handle,
            httpx.AsyncClient(base_url=handle.base_url, timeout=600) as http,
        ):
            odoo = await OdooClient.connect(
                OdooConfig(
                    url=handle.base_url,
                    database=handle.database,
                    login="admin",
                    api_key=SecretStr(handle.info.admin_api_key),
                )
            )
            store = SqliteBomStore(Path(tmp) / "relay.db")
            await store.open()
            try:
                bench = Bench(handle, http, odoo, store, 0)
                bench.workcenter = await bench.x("mrp.workcenter", "create", {"name": "WC"})
                codes = sorted(
                    {r.product for sub in (big, deep) for r in sub.revisions}
                    | {
                        line.product
                        for sub in (big, deep)
                        for r in sub.revisions
                        for line in r.lines
                    }
                )
                ids = await products(bench, codes)
                results: dict[str, Any] = {"lines": args.lines, "levels": args.levels}
                for name, submission, lines in (
                    ("flat", big, args.lines),
                    ("tree", deep, deep_lines),
                ):
                    calls, seconds = await publish(bench, submission)
                    naive_calls, naive_seconds = await naive(bench, submission, ids)
                    results[name] = {
                        "boms": len(submission.revisions),
                        "lines": lines,
                        "calls": calls,
                        "calls_per_line": calls / lines,
                        "seconds": seconds,
                        "naive_calls": naive_calls,
                        "naive_calls_per_line": naive_calls / lines,
                        "naive_seconds": naive_seconds,
                    }
            finally:
                await store.close()
                await odoo.close()
    print_table(results)
    return results


def print_table(results: dict[str, Any]) -> None:
    head = ["case", "BOMs", "lines", "calls", "calls/line", "s", "naive calls", "calls/line", "s"]
    rows = [head]
    for name in ("flat", "tree"):
        r = results[name]
        label = (
            f"{results['lines']}-line BOM" if name == "flat" else f"{results['levels']}-level tree"
        )
        rows.append(
            [
                label,
                str(r["boms"]),
                str(r["lines"]),
                str(r["calls"]),
                f"{r['calls_per_line']:.3f}",
                f"{r['seconds']:.2f}",
                str(r["naive_calls"]),
                f"{r['naive_calls_per_line']:.3f}",
                f"{r['naive_seconds']:.2f}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for row in rows:
        print(
            "  ".join(
                cell.ljust(w) if i == 0 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--lines", type=int, default=500, help="lines of the flat BOM")
    parser.add_argument("--levels", type=int, default=5, help="depth of the tree")
    parser.add_argument("--branching", type=int, default=2, help="sub-assemblies per assembly")
    parser.add_argument("--leaves", type=int, default=3, help="bought components per assembly")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def run(**options: Any) -> dict[str, Any]:
    """With the command line's defaults, overridden by ``options``; returns the figures."""
    args = build_parser().parse_args([])
    for name, value in options.items():
        if not hasattr(args, name):
            raise TypeError(f"unknown option {name!r}")
        setattr(args, name, value)
    return asyncio.run(bench_run(args))


def main() -> None:
    args = build_parser().parse_args()
    results = asyncio.run(bench_run(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
