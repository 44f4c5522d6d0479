"""``python -m bench``: every benchmark at a modest size, then one table of the figures.

Each benchmark runs in a fresh interpreter (so its memory, CPU and event loop are its own)
through its module's ``run(...)``, which hands its figures back as JSON; its own detailed
tables go to ``<log dir>/<name>.log`` (``--verbose``: to this terminal). The summary gives
per figure the value, the physical limit measured in the same run, their ratio, the project's
aim and whether it is met, after the machine and the command line. ``--quick`` shrinks every
size (about two minutes on two cores), ``--only`` picks benchmarks, ``--json PATH`` keeps every
figure, ``--markdown`` also prints the table as Markdown.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

MQTT_CASES = (
    "backlog: mosquitto_sub",
    "backlog: MqttSource -> QueueStore, MQTT 3.1.1",
    "live: mosquitto_sub",
    "live: MqttSource -> QueueStore, MQTT 3.1.1",
)

#: Per benchmark, in running order: keyword arguments of its ``run`` by default and with --quick.
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "queue_ingest": (
        {"seconds": 1.0, "rounds": 3, "rss_events": None},
        {"seconds": 0.5, "rounds": 1, "rss_events": None},
    ),
    "mqtt_ingest": (
        {"messages": 100_000, "only": MQTT_CASES},
        {"messages": 20_000, "only": MQTT_CASES},
    ),
    "sparkplug_ingest": (
        {"messages": 20_000, "metrics": 10},
        {"messages": 5_000, "metrics": 10},
    ),
    "opcua_ingest": (
        {"tags": 1000, "hz": 10.0, "seconds": 5.0},
        {"tags": 1000, "hz": 10.0, "seconds": 1.5},
    ),
    "uploader_drain": (
        {"events": 1_000_000, "targets": ("stand-in", "relay"), "compressions": ("zstd",)},
        {"events": 100_000, "targets": ("stand-in", "relay"), "compressions": ("zstd",)},
    ),
    "inbox_store": (
        {"batches": 20, "batch_size": 1000, "rounds": 3},
        {"batches": 10, "batch_size": 1000, "rounds": 1},
    ),
    "relay_ingest": (
        {"gateways": 8, "batches": 10, "rounds": 2, "setups": ("sqlite", "pg1", "pg2")},
        {"gateways": 8, "batches": 5, "rounds": 1, "setups": ("sqlite",)},
    ),
    "odoo_post": (
        {"events": 1000, "raw_calls": 300},
        {"events": 400, "raw_calls": 100},
    ),
    "odoo_post_live": (
        {"events": 1000, "rate": 100.0, "raw_calls": 100},
        {"events": 300, "rate": 100.0, "raw_calls": 50},
    ),
    "reconcile": (
        {"orders": 1000, "quants": 5000},
        {"orders": 200, "quants": 1000},
    ),
    "agent_rss": (
        {"events": 1_000_000, "opcua": True, "settle_seconds": 10.0},
        {"events": 100_000, "opcua": True, "settle_seconds": 4.0},
    ),
    "agent_rss_mqtt": (
        {"events": 1_000_000, "opcua": False, "settle_seconds": 10.0},
        {"events": 100_000, "opcua": False, "settle_seconds": 4.0},
    ),
    "agent_rss_opcua": (
        {"events": 1_000_000, "opcua": True, "mqtt": False, "settle_seconds": 10.0},
        {"events": 100_000, "opcua": True, "mqtt": False, "settle_seconds": 4.0},
    ),
    "e2e_latency": (
        {"increments": 300, "rate": 20.0},
        {"increments": 60, "rate": 20.0},
    ),
    "bom_publish": (
        {"lines": 500, "levels": 5},
        {"lines": 200, "levels": 4},
    ),
    "mqtt_e2e": (
        {"messages": 30_000},
        {"messages": 10_000},
    ),
}

#: Entries of SIZES that run another entry's module.
MODULES = {
    "odoo_post_live": "odoo_post",
    "agent_rss_mqtt": "agent_rss",
    "agent_rss_opcua": "agent_rss",
}


# --- running one benchmark ------------------------------------------------------------------


def child(name: str, options: str, result_path: Path) -> int:
    """In the fresh interpreter: ``bench.<module>.run(**options)``, its result as JSON."""
    module = importlib.import_module(f"bench.{MODULES.get(name, name)}")
    result = module.run(**json.loads(options))
    result_path.write_text(json.dumps(result))
    return 0


def run_bench(name: str, options: dict[str, Any], log: Path | None) -> dict[str, Any]:
    """``bench.<module>.run(**options)`` in a fresh interpreter; its result, or raises."""
    with tempfile.TemporaryDirectory(prefix="bench-result-") as tmp:
        result_path = Path(tmp) / "result.json"
        command = [sys.executable, "-m", "bench", "--child", name, json.dumps(options)]
        with contextlib.ExitStack() as stack:
            out = stack.enter_context(log.open("wb")) if log else None
            process = subprocess.run(
                [*command, str(result_path)],
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                stdout=out,
                stderr=subprocess.STDOUT if out else None,
                check=False,
            )
        if process.returncode != 0 or not result_path.exists():
            where = f"; see {log}" if log else ""
            raise RuntimeError(f"{name} exited {process.returncode}{where}")
        result: dict[str, Any] = json.loads(result_path.read_text())
        return result


# --- the machine ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, kernel, Python, and the file system the temporary files go to."""
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "ram_gib": mem_kib / 1024**2,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tmp": tempfile.gettempdir(),
        "tmp_fs": _file_system(Path(tempfile.gettempdir())),
    }


def _file_system(path: Path) -> str:
    """Type and device of the mount holding ``path``, from /proc/mounts."""
    best = ("", "unknown", "unknown")
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, fstype = line.split()[:3]
        if str(path).startswith(mount) and len(mount) >= len(best[0]):
            best = (mount, fstype, device)
    return f"{best[1]} on {best[2]}"


# --- the table ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One figure: its value and the physical limit, as text, and what the aim says."""

    figure: str
    value: str
    limit: str
    ratio: float | None
    aim: str = ""
    met: bool | None = None


def _rate(value: float, unit: str = "ev/s") -> str:
    return f"{value:,.0f} {unit}"


def rows_queue_ingest(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    out = []
    for row in r["queue"]:
        if row["durability"] != "power" or (row["producers"], row["events_per_call"]) not in (
            (50, 1),
            (1, 100),
        ):
            continue
        producers = f"{row['producers']} producer{'s' if row['producers'] > 1 else ''}"
        shape = f"{producers} x {row['events_per_call']} ev/call"
        raw_rows = row["raw_same_rows_per_commit"]
        aim = 0.3 if row["producers"] > 1 else 0.5
        ratio = row["rate"] / row["raw_same"]
        out.append(
            Row(
                f"Queue ingest, power, {shape} (~{row['events_per_commit']:.0f} ev/commit)",
                _rate(row["rate"]),
                f"raw sqlite3 FULL, {raw_rows} rows/commit: {_rate(row['raw_same'], 'rows/s')}",
                ratio,
                f">= {aim}",
                ratio >= aim,
            )
        )
    return out


def rows_mqtt_ingest(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    out = []
    for mode in ("backlog", "live"):
        case = r["cases"].get(f"{mode}: MqttSource -> QueueStore, MQTT 3.1.1")
        if case is None or case["baseline_rate"] is None:
            continue
        aim = 0.3 if mode == "backlog" else 0.8
        out.append(
            Row(
                f"MQTT ingest, QoS 1 {mode}, 3.1.1, power",
                _rate(case["rate"], "msg/s"),
                f"mosquitto_sub -q 1: {_rate(case['baseline_rate'], 'msg/s')}",
                case["ratio"],
                f">= {aim}",
                case["ratio"] >= aim,
            )
        )
    return out


def rows_sparkplug_ingest(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"Sparkplug B ingest, NDATA backlog x {r['metrics_per_message']} counters, power",
            _rate(r["sparkplug_metric_rate"], "metrics/s"),
            f"`mosquitto_sub -q 1`: {_rate(r['sparkplug_sub_msg_rate'], 'msg/s')}",
            r["sparkplug_msg_rate"] / r["sparkplug_sub_msg_rate"],
        ),
        Row(
            "JSON MQTT ingest beside it, backlog, 3.1.1, power",
            _rate(r["json_msg_rate"], "msg/s"),
            f"`mosquitto_sub -q 1`: {_rate(r['json_sub_msg_rate'], 'msg/s')}",
            r["json_msg_rate"] / r["json_sub_msg_rate"],
        ),
    ]


def rows_opcua_ingest(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    counter = r["cases"]["OpcuaSource counter"]
    base = r["cases"]["asyncua client (counting)"]["received"]
    return [
        Row(
            f"OPC UA ingest, counter rule, {r['tags']:,} tags x {r['hz']:g} Hz",
            _rate(counter["applied"], "changes/s"),
            f"bare asyncua client: {_rate(base, 'changes/s')}",
            counter["applied"] / base,
        )
    ]


def rows_uploader_drain(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    out = []
    for row in r["rows"]:
        relay = row["target"] == "relay"
        to = f"real relay (SQLite, {r['relay_durability']})" if relay else "relay stand-in"
        out.append(
            Row(
                f"Backlog drain, {r['events']:,} events to a {to}, {row['compression']}",
                _rate(row["rate"]),
                f"pre-signed bodies, one at a time: {_rate(row['baseline_rate'])}",
                row["ratio"],
                ">= 40,000 ev/s and >= 1.2x" if relay else "",
                row["rate"] >= 40_000 and row["ratio"] >= 1.2 if relay else None,
            )
        )
    return out


def rows_inbox_store(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    rows = r["rows"]
    pairs = [
        ("SqliteInbox, durability=power", "raw sqlite3, synchronous=FULL"),
        ("PostgresInbox (COPY)", "raw asyncpg COPY"),
    ]
    out = []
    for store, raw in pairs:
        if store in rows and raw in rows:
            out.append(
                Row(
                    f"Inbox store_batch, {store}",
                    _rate(rows[store]["rate"]),
                    f"{raw}: {_rate(rows[raw]['rate'])}",
                    rows[store]["rate"] / rows[raw]["rate"],
                )
            )
    return out


def rows_relay_ingest(r: dict[str, Any], results: dict[str, Any]) -> list[Row]:
    raw = results.get("inbox_store", {}).get("rows", {})
    limits = {
        "sqlite": "raw sqlite3, synchronous=FULL",
        "pg1": "raw asyncpg COPY",
        "pg2": "raw asyncpg COPY",
    }
    names = {
        "sqlite": "SQLite (power)",
        "pg1": "PostgreSQL, 1 replica",
        "pg2": "PostgreSQL, 2 replicas",
    }
    out = []
    for setup, figures in r["setups"].items():
        limit = raw.get(limits[setup])
        ratio = figures["rate"] / limit["rate"] if limit else None
        aimed = setup == "sqlite" and ratio is not None
        out.append(
            Row(
                f"Relay ingest, {r['gateways']} gateways, {names[setup]}",
                _rate(figures["rate"]),
                f"{limits[setup]}: {_rate(limit['rate'])}" if limit else "(inbox_store not run)",
                ratio,
                ">= 0.6" if setup == "sqlite" else "",
                ratio >= 0.6 if aimed and ratio is not None else None,
            )
        )
    return out


def _odoo_rows(r: dict[str, Any], stream: str) -> list[Row]:
    target = r["targets"]["sandbox"]
    runs = {run["max_fold"]: run for run in target["runs"]}
    folded = runs[max(runs)]
    unfolded = runs.get(1)
    out = [
        Row(
            f"Odoo calls per event, {stream} (sandbox)",
            f"{folded['calls_per_event']:.3f}",
            f"unfolded (max_fold 1): {unfolded['calls_per_event']:.3f}" if unfolded else "",
            folded["calls_per_event"] / unfolded["calls_per_event"] if unfolded else None,
            "<= 0.2" if r["rate"] > 0 else "",
            folded["calls_per_event"] <= 0.2 if r["rate"] > 0 else None,
        )
    ]
    if r["rate"] <= 0:
        raw = target["raw_calls_per_second"]
        out.append(
            Row(
                f"Odoo posting, {stream} (sandbox)",
                _rate(folded["rate"]),
                f"sequential reads: {_rate(raw, 'calls/s')}",
                folded["rate"] / raw,
            )
        )
    return out


def rows_odoo_post(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    return _odoo_rows(r, f"backlog of {r['events']:,}")


def rows_odoo_post_live(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    return _odoo_rows(r, f"live stream at {r['rate']:g} ev/s")


def rows_agent_rss(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    sources = " + ".join(
        name for name, on in (("MQTT", r.get("mqtt", True)), ("OPC UA", r["opcua"])) if on
    )
    floor = r["interpreter_mb"]
    limit = f"bare python3: {floor:.1f} MB (agent modules imported: {r['imports_mb']:.1f} MB)"
    return [
        Row(
            f"Agent RSS, idle ({sources})",
            f"{r['idle_mb']:.1f} MB",
            limit,
            r["idle_mb"] / floor,
            "< 40 MB",
            r["idle_mb"] < 40,
        ),
        Row(
            f"Agent RSS, {r['events']:,} queued ({sources})",
            f"{r['loaded_mb']:.1f} MB",
            limit,
            r["loaded_mb"] / floor,
            "< 50 MB",
            r["loaded_mb"] < 50,
        ),
    ]


def rows_e2e_latency(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    out = []
    for name, case in r["cases"].items():
        label = (
            f"publishing {case['publishing_interval_ms']} ms, "
            f"batch age {case['batch_max_age_ms']} ms"
        )
        for point in ("p50", "p99"):
            value = case["committed"][point]
            floor = case["opcua_floor"][point]
            p99 = point == "p99" and name == "defaults"
            out.append(
                Row(
                    f"E2E latency {point}, OPC UA write to relay commit ({label})",
                    f"{value:.0f} ms",
                    f"bare asyncua notification {point}: {floor:.0f} ms",
                    value / floor,
                    "< 100 ms and <= 1.5x" if p99 else "",
                    value < 100 and value <= 1.5 * floor if p99 else None,
                )
            )
    return out


def rows_bom_publish(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    out = []
    for name, label in (("flat", f"{r['lines']}-line BOM"), ("tree", f"{r['levels']}-level tree")):
        case = r[name]
        out.append(
            Row(
                f"BOM publish, {label} ({case['boms']} BOMs, {case['lines']} lines), sandbox",
                f"{case['calls_per_line']:.3f} calls/line, {case['seconds']:.2f} s",
                f"naive create: {case['naive_calls_per_line']:.3f} calls/line, "
                f"{case['naive_seconds']:.2f} s",
                case["calls"] / case["naive_calls"],
            )
        )
    return out


def rows_reconcile(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    return [
        Row(
            f"Reconcile, {r['orders']} open orders, {r['quants']} quants"
            f" ({r['odoo_calls']} Odoo calls)",
            f"{r['seconds']:.2f} s",
            f"one search_read of every quant: {r['one_quant_read_seconds']:.2f} s",
            r["seconds"] / r["one_quant_read_seconds"] if r["one_quant_read_seconds"] else None,
        )
    ]


def rows_mqtt_e2e(r: dict[str, Any], _: dict[str, Any]) -> list[Row]:
    agent, bridge = r["cases"]["agent"], r["cases"]["bridge"]
    return [
        Row(
            f"E2E MQTT publish to relay commit, {r['messages']:,} QoS 1 messages, power both ends",
            _rate(agent["rate"]),
            f"mosquitto edge->hub bridge (not durable): {_rate(bridge['rate'], 'msg/s')}",
            r["ratio"],
            ">= 1.0x",
            r["ratio"] >= 1.0,
        )
    ]


ROWS: dict[str, Callable[[dict[str, Any], dict[str, Any]], list[Row]]] = {
    "queue_ingest": rows_queue_ingest,
    "mqtt_ingest": rows_mqtt_ingest,
    "sparkplug_ingest": rows_sparkplug_ingest,
    "opcua_ingest": rows_opcua_ingest,
    "uploader_drain": rows_uploader_drain,
    "inbox_store": rows_inbox_store,
    "relay_ingest": rows_relay_ingest,
    "odoo_post": rows_odoo_post,
    "reconcile": rows_reconcile,
    "odoo_post_live": rows_odoo_post_live,
    "agent_rss": rows_agent_rss,
    "agent_rss_mqtt": rows_agent_rss,
    "agent_rss_opcua": rows_agent_rss,
    "e2e_latency": rows_e2e_latency,
    "bom_publish": rows_bom_publish,
    "mqtt_e2e": rows_mqtt_e2e,
}


def _cells(row: Row) -> list[str]:
    ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
    met = "" if row.met is None else ("yes" if row.met else "NO")
    return [row.figure, row.value, row.limit, ratio, row.aim, met]


HEAD = ["figure", "value", "limit in the same run", "ratio", "aim", "met?"]


def text_table(rows: list[Row]) -> str:
    cells = [HEAD, *(_cells(r) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(HEAD))]
    right = {1, 3}
    lines = []
    for n, line in enumerate(cells):
        lines.append(
            "  ".join(
                c.rjust(widths[i]) if i in right else c.ljust(widths[i]) for i, c in enumerate(line)
            ).rstrip()
        )
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEAD) + " |", "|---|---:|---|---:|---|---|"]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        return child(sys.argv[2], sys.argv[3], Path(sys.argv[4]))
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, about two minutes")
    parser.add_argument(
        "--only", nargs="+", choices=list(SIZES), metavar="NAME", help="of: %(choices)s"
    )
    parser.add_argument("--skip", nargs="+", choices=list(SIZES), metavar="NAME", default=[])
    parser.add_argument("--verbose", "-v", action="store_true", help="benchmarks' output here")
    parser.add_argument("--log-dir", type=Path, help="default: a new directory under the temp dir")
    parser.add_argument("--json", type=Path, help="write every figure there")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = parser.parse_args()

    names = [n for n in SIZES if (args.only is None or n in args.only) and n not in args.skip]
    command = shlex.join(["python3", "-m", "bench", *sys.argv[1:]])
    info = machine()
    load_before = os.getloadavg()
    print(f"command: {command}")
    print(
        f"machine: {info['cpu']}, {info['cores']} cores, {info['ram_gib']:.1f} GiB RAM, "
        f"Linux {info['kernel']}, Python {info['python']}; temp files on {info['tmp_fs']}"
    )
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in load_before)}")
    log_dir = None
    if not args.verbose:
        log_dir = args.log_dir or Path(tempfile.mkdtemp(prefix="bench-"))
        log_dir.mkdir(parents=True, exist_ok=True)
        print(f"benchmark output: {log_dir}/<name>.log")

    results: dict[str, Any] = {}
    failures: dict[str, str] = {}
    timings: dict[str, float] = {}
    started = time.monotonic()
    for n, name in enumerate(names, 1):
        options = SIZES[name][1 if args.quick else 0]
        print(f"[{n}/{len(names)}] {name} ...", end="" if log_dir else "\n", flush=True)
        begin = time.monotonic()
        log = log_dir / f"{name}.log" if log_dir else None
        try:
            results[name] = run_bench(name, options, log)
        except RuntimeError as exc:
            failures[name] = str(exc)
        timings[name] = time.monotonic() - begin
        verdict = "FAILED" if name in failures else "done"
        print(
            f"{'' if log_dir else f'[{n}/{len(names)}] {name}'} {verdict} in {timings[name]:.0f} s"
        )
    total = time.monotonic() - started
    load_after = os.getloadavg()

    rows: list[Row] = []
    for name in names:
        if name in results:
            rows += ROWS[name](results[name], results)
    print(
        f"\nAll figures from this run ({total / 60:.1f} min); load average at start "
        f"{load_before[0]:.2f}, at end {load_after[0]:.2f} (1 min)\n"
    )
    print(text_table(rows))
    if args.markdown:
        print()
        print(markdown_table(rows))
    for name, error in failures.items():
        print(f"\n{name} failed:\n{error.rstrip()}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "command": command,
                    "machine": info,
                    "load_average": {"start": load_before, "end": load_after},
                    "seconds": timings,
                    "results": results,
                    "failures": failures,
                },
                indent=2,
                default=str,
            )
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
