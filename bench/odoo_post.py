"""Posting rate of the Odoo writer: a steady production stream into the sandbox (or a real Odoo).

Run by hand: ``python3 bench/odoo_post.py [--orders 10] [--events 3000] [--rate 0]
[--max-fold 500] [--raw-calls 500]``. Each run starts a fresh Odoo 18 sandbox in this process
(``running_sandbox``), creates the master data as admin (a finished product, a BOLT component
with stock, a BOM and ``--orders`` confirmed MOs), and runs ``PostingWorker`` in this process too,
on a temporary SQLite inbox and posting store (relay defaults: durability ``power``) as the
connector account. The events are ``production.reported`` (qty 1) and ``material.consumed``
(BOLT qty 2), 1:1, round-robin over the orders.

``--rate 0`` (the default) stores every event first and times the writer draining that
backlog; ``--rate R`` stores events at R per second while the writer runs (a live stream) and
times from the first event stored to the last one posted. A run ends when the writer has
posted every event; each is then checked in Odoo (quantity producing and consumed per MO) and
the posting store must have nothing pending and no dead letters.

Odoo calls are what the sandbox counted after the master data (``faults.reset_calls()``), so
they include the writer's connect; against a real Odoo they are the writer's client count.
Every run is repeated with ``--max-fold 1`` (each event its own round of calls) for comparison.
The physical limit beside it: ``--raw-calls`` sequential ``mrp.production.read`` calls through
``OdooClient``, one at a time, as calls/s; ``x raw`` is events/s divided by that rate. The
sandbox shares this process and its event loop with the writer, so both figures are measured
under the same roof.

``--odoo-url URL --db DB --login L --api-key-file F --admin-key-file F`` repeats the same runs
against a real Odoo 18 (mrp and stock installed). With ``--master-password`` the runs work in a
copy of ``DB`` (``db.duplicate_database``) that is dropped afterwards; without it they create
products and orders in ``DB`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shlex
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
from pydantic import SecretStr

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cloud_relay.config import WriterConfig
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import InboxEvent
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.sandbox import FaultInjector, running_sandbox
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.posting.worker import PostingWorker
from wire.events import format_timestamp
from wire.ids import new_event_id

EPOCH = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
GATEWAY = "bench-gw"
#: Events stored per inbox batch, as the agent uploads them.
BATCH_EVENTS = 500
#: How often the live feeder stores what is due, in seconds.
FEED_TICK_SECONDS = 0.02
BOLT_PER_UNIT = 2.0
#: Fields the writer reads of an MO each step; the raw calls read the same.
MO_FIELDS = ["name", "state", "product_id", "product_qty", "qty_producing", "location_src_id"]


@dataclass(frozen=True)
class Odoo:
    """Where a run posts: the connector account, the admin account, and the sandbox's counter."""

    url: str
    database: str
    login: str
    api_key: str
    admin_login: str
    admin_api_key: str
    faults: FaultInjector | None
    """The sandbox's call counter; None for a real Odoo."""

    def config(self, *, admin: bool = False) -> OdooConfig:
        return OdooConfig(
            url=self.url,
            database=self.database,
            login=self.admin_login if admin else self.login,
            api_key=SecretStr(self.admin_api_key if admin else self.api_key),
        )


@dataclass(frozen=True)
class Orders:
    """The master data of one run: MO ids and names, and the component's id and code."""

    ids: list[int]
    names: list[str]
    bolt_id: int
    bolt_code: str


@dataclass(frozen=True)
class Run:
    """One timed run: what was posted, how long it took, how many Odoo calls it made."""

    target: str
    max_fold: int
    events: int
    seconds: float
    calls: int
    lag: float
    """Seconds from the last event stored to the last one posted (live stream only)."""
    by_method: dict[str, int]

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def calls_per_event(self) -> float:
        return self.calls / self.events


# --- Odoo: sandbox or real --------------------------------------------------------------


@contextlib.asynccontextmanager
async def sandbox_odoo() -> AsyncIterator[Odoo]:
    """A fresh Odoo 18 sandbox in this process."""
    async with running_sandbox(18) as handle:
        info = handle.info
        yield Odoo(
            handle.base_url,
            handle.database,
            handle.login,
            handle.api_key,
            info.admin_login,
            info.admin_api_key,
            handle.faults,
        )


@contextlib.asynccontextmanager
async def real_odoo(args: argparse.Namespace) -> AsyncIterator[Odoo]:
    """The real Odoo of the command line, in a copy of ``--db`` when a master password is given."""
    key = Path(args.api_key_file).read_text().strip()  # noqa: ASYNC240 (set-up, before timing)
    admin_key = Path(args.admin_key_file).read_text().strip()  # noqa: ASYNC240
    url = args.odoo_url.rstrip("/")
    if not args.master_password:
        yield Odoo(url, args.db, args.login, key, args.admin_login, admin_key, None)
        return
    copy = f"{args.db}_bench_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await db_call(http, "duplicate_database", args.master_password, args.db, copy)
        try:
            yield Odoo(url, copy, args.login, key, args.admin_login, admin_key, None)
        finally:
            await db_call(http, "drop", args.master_password, copy)


async def db_call(http: httpx.AsyncClient, method: str, *args: Any) -> Any:
    """A call of Odoo's ``db`` service; raises on an error answer."""
    params = {"service": "db", "method": method, "args": list(args)}
    payload = {"jsonrpc": "2.0", "method": "call", "params": params}
    answer = (await http.post("/jsonrpc", json=payload)).json()
    if "error" in answer:
        raise RuntimeError(f"db.{method}: {answer['error'].get('data', answer['error'])}")
    return answer.get("result")


# --- master data and events -------------------------------------------------------------


async def create_orders(odoo: Odoo, orders: int, units_each: int) -> Orders:
    """A finished product, a BOLT with ample stock, a BOM (2 BOLT per unit) and confirmed MOs."""
    tag = uuid.uuid4().hex[:6].upper()
    bolt_code = f"BENCH-BOLT-{tag}"
    admin = await OdooClient.connect(odoo.config(admin=True))
    try:
        storable = {"type": "consu", "is_storable": True, "tracking": "none"}
        finished = await admin.create(
            "product.product",
            {"name": f"Bench widget {tag}", "default_code": f"BENCH-W-{tag}", **storable},
        )
        bolt = await admin.create(
            "product.product", {"name": f"Bench bolt {tag}", "default_code": bolt_code, **storable}
        )
        warehouse = await admin.search_read("stock.warehouse", [], ["lot_stock_id"], limit=1)
        stock = int(warehouse[0]["lot_stock_id"][0])
        inventory = {"inventory_mode": True}
        quant = await admin.create(
            "stock.quant",
            {
                "product_id": bolt,
                "location_id": stock,
                "inventory_quantity": orders * units_each * BOLT_PER_UNIT * 10,
            },
            context=inventory,
        )
        await admin.execute("stock.quant", "action_apply_inventory", [quant], context=inventory)
        template = (await admin.read("product.product", [finished], ["product_tmpl_id"]))[0]
        bom = await admin.create(
            "mrp.bom",
            {
                "product_tmpl_id": template["product_tmpl_id"][0],
                "product_qty": 1,
                "consumption": "flexible",
                "bom_line_ids": [[0, 0, {"product_id": bolt, "product_qty": BOLT_PER_UNIT}]],
            },
        )
        ids = []
        for _ in range(orders):
            mo = await admin.create(
                "mrp.production",
                {"product_id": finished, "product_qty": units_each, "bom_id": bom},
            )
            await admin.execute("mrp.production", "action_confirm", [mo])
            ids.append(mo)
        rows = await admin.read("mrp.production", ids, ["name", "state"])
        if any(r["state"] != "confirmed" for r in rows):
            raise RuntimeError(f"orders not confirmed: {rows}")
        return Orders(ids, [r["name"] for r in rows], bolt, bolt_code)
    finally:
        await admin.close()


def make_events(orders: Orders, count: int) -> list[InboxEvent]:
    """``count`` events, production and consumption 1:1, round-robin over the orders."""
    out = []
    for seq in range(1, count + 1):
        pair = (seq - 1) // 2
        order = orders.names[pair % len(orders.names)]
        if seq % 2:
            event_type, data = "production.reported", {"order": order, "qty": 1.0}
        else:
            event_type = "material.consumed"
            data = {"order": order, "product": orders.bolt_code, "qty": BOLT_PER_UNIT}
        event_id = new_event_id()
        occurred_at = EPOCH + timedelta(milliseconds=seq)
        body = {
            "id": event_id,
            "gateway_id": GATEWAY,
            "seq": seq,
            "type": event_type,
            "occurred_at": format_timestamp(occurred_at),
            "source": "opcua:ns=2;s=Line1.Counter",
            "data": data,
        }
        out.append(
            InboxEvent(
                event_id,
                seq,
                event_type,
                occurred_at,
                json.dumps(body, separators=(",", ":")).encode(),
            )
        )
    return out


# --- one run ----------------------------------------------------------------------------


async def store(inbox: SqliteInbox, events: Sequence[InboxEvent]) -> None:
    """Store events in batches of at most ``BATCH_EVENTS``, in seq order."""
    for start in range(0, len(events), BATCH_EVENTS):
        batch = list(events[start : start + BATCH_EVENTS])
        await inbox.store_batch(GATEWAY, "bench-key", batch[0].seq, batch)


async def feed(
    inbox: SqliteInbox, writer: PostingWorker, events: Sequence[InboxEvent], rate: float
) -> float:
    """Store events at ``rate`` per second from now, waking the writer; when the last was stored."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while sent < len(events):
        due = min(len(events), int((loop.time() - start) * rate) + 1)
        if due > sent:
            await store(inbox, events[sent:due])
            sent = due
            writer.wake()
        await asyncio.sleep(FEED_TICK_SECONDS)
    return loop.time()


async def wait_until_posted(writer: PostingWorker, task: asyncio.Task[None], count: int) -> float:
    """Wait until the writer has posted ``count`` events; the moment it had."""
    loop = asyncio.get_running_loop()
    while writer.stats().events_posted < count:
        if task.done():
            task.result()
            raise RuntimeError("the writer stopped")
        stats = writer.stats()
        if stats.dead_lettered or stats.refusals:
            raise RuntimeError(f"Odoo refused events: {stats}")
        await asyncio.sleep(0.002)
    return loop.time()


async def run_once(
    name: str, odoo: Odoo, args: argparse.Namespace, max_fold: int, directory: Path
) -> Run:
    """Master data, then the timed stream through a fresh writer, then the checks."""
    units_each = -(-args.events // 2 // args.orders)
    orders = await create_orders(odoo, args.orders, units_each)
    events = make_events(orders, args.events)
    path = directory / f"relay-{name}-{max_fold}-{uuid.uuid4().hex[:6]}.db"
    inbox = SqliteInbox(path, durability=args.durability)
    posting = SqlitePostingStore(path, durability=args.durability)
    await inbox.open()
    await posting.open()
    config = WriterConfig(
        concurrency=args.concurrency,
        max_fold=max_fold,
        patience_seconds=3600,
        # Unfolded means one event a round: no waiting for company either.
        linger_seconds=args.linger if max_fold > 1 else 0.0,
    )
    writer = PostingWorker(inbox, posting, odoo.config(), config)
    loop = asyncio.get_running_loop()
    try:
        if args.rate <= 0:
            await store(inbox, events)
        if odoo.faults is not None:
            odoo.faults.reset_calls()
        start = loop.time()
        task = asyncio.create_task(writer.run())
        try:
            if args.rate > 0:
                fed = asyncio.create_task(feed(inbox, writer, events, args.rate))
                done = await wait_until_posted(writer, task, len(events))
                last_stored = await fed
            else:
                done = await wait_until_posted(writer, task, len(events))
                last_stored = start
            calls_seen = odoo.faults.calls() if odoo.faults is not None else {}
            client_calls = writer.stats().odoo_calls
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await check(odoo, orders, events, posting)
    finally:
        await posting.close()
        await inbox.close()
    calls = sum(calls_seen.values()) if odoo.faults is not None else client_calls
    return Run(
        name, max_fold, len(events), done - start, calls, max(0.0, done - last_stored), calls_seen
    )


async def check(
    odoo: Odoo, orders: Orders, events: Sequence[InboxEvent], posting: SqlitePostingStore
) -> None:
    """Every event is in Odoo once: quantity producing and BOLT consumed per MO add up."""
    counts = await posting.counts()
    if counts.pending or counts.dead or counts.parked_orders:
        raise RuntimeError(f"posting store not drained: {counts}")
    produced: dict[str, float] = {}
    consumed: dict[str, float] = {}
    for event in events:
        data = json.loads(event.body)["data"]
        totals = produced if event.type == "production.reported" else consumed
        totals[data["order"]] = totals.get(data["order"], 0.0) + data["qty"]
    admin = await OdooClient.connect(odoo.config(admin=True))
    try:
        mos = await admin.read("mrp.production", orders.ids, ["name", "qty_producing"])
        moves = await admin.search_read(
            "stock.move",
            [
                ["raw_material_production_id", "in", orders.ids],
                ["product_id", "=", orders.bolt_id],
            ],
            ["raw_material_production_id", "quantity"],
        )
    finally:
        await admin.close()
    names = {mo["id"]: mo["name"] for mo in mos}
    got_produced = {mo["name"]: float(mo["qty_producing"]) for mo in mos}
    got_consumed: dict[str, float] = {}
    for move in moves:
        name = names[move["raw_material_production_id"][0]]
        got_consumed[name] = got_consumed.get(name, 0.0) + float(move["quantity"])
    for name in orders.names:
        want = (produced.get(name, 0.0), consumed.get(name, 0.0))
        got = (got_produced.get(name, 0.0), got_consumed.get(name, 0.0))
        if want != got:
            raise RuntimeError(f"{name}: Odoo has producing/consumed {got}, the events say {want}")


async def raw_rate(odoo: Odoo, calls: int) -> float:
    """Sequential ``mrp.production.read`` calls per second through one OdooClient."""
    orders = await create_orders(odoo, 1, 1)
    client = await OdooClient.connect(odoo.config())
    try:
        await client.read("mrp.production", orders.ids, MO_FIELDS)  # the connection
        start = time.perf_counter()
        for _ in range(calls):
            await client.read("mrp.production", orders.ids, MO_FIELDS)
        return calls / (time.perf_counter() - start)
    finally:
        await client.close()


# --- the targets and the table ----------------------------------------------------------

OdooFactory = Callable[[], contextlib.AbstractAsyncContextManager[Odoo]]


async def bench_target(
    name: str, open_odoo: OdooFactory, args: argparse.Namespace, directory: Path, fresh: bool
) -> tuple[list[Run], float]:
    """The runs (``--max-fold``, then 1) and the raw call rate on one target.

    ``fresh``: each run gets its own Odoo (a new sandbox); otherwise all share one.
    """
    folds = [args.max_fold] if args.max_fold == 1 else [args.max_fold, 1]
    runs: list[Run] = []
    async with contextlib.AsyncExitStack() as stack:
        shared = None if fresh else await stack.enter_async_context(open_odoo())

        @contextlib.asynccontextmanager
        async def odoo_for_run() -> AsyncIterator[Odoo]:
            if shared is not None:
                yield shared
            else:
                async with open_odoo() as odoo:
                    yield odoo

        for max_fold in folds:
            async with odoo_for_run() as odoo:
                runs.append(await run_once(name, odoo, args, max_fold, directory))
            print(f"  {name} max_fold {max_fold}: {runs[-1].rate:,.0f} events/s", flush=True)
        async with odoo_for_run() as odoo:
            raw = await raw_rate(odoo, args.raw_calls)
        print(f"  {name} raw: {raw:,.0f} calls/s", flush=True)
    return runs, raw


def print_table(results: dict[str, tuple[list[Run], float]], args: argparse.Namespace) -> None:
    stream = f"live stream at {args.rate:,.0f} events/s" if args.rate > 0 else "backlog"
    print(
        f"\n{args.events:,} events (production.reported + material.consumed 1:1) over"
        f" {args.orders} orders, {stream}; writer concurrency {args.concurrency}, SQLite"
        f" durability {args.durability}; {os.cpu_count()} CPUs"
    )
    print(
        f"{'target':<10}{'max_fold':>9}{'events':>8}{'seconds':>9}{'events/s':>10}"
        f"{'Odoo calls':>12}{'calls/ev':>10}{'raw calls/s':>13}{'x raw':>8}{'lag s':>7}"
    )
    for runs, raw in results.values():
        for run in runs:
            lag = f"{run.lag:.2f}" if args.rate > 0 else "-"
            print(
                f"{run.target:<10}{run.max_fold:>9}{run.events:>8,}{run.seconds:>9.2f}"
                f"{run.rate:>10,.0f}{run.calls:>12,}{run.calls_per_event:>10.3f}"
                f"{raw:>13,.0f}{run.rate / raw:>8.2f}{lag:>7}"
            )
    for name, (runs, _) in results.items():
        for run in runs:
            if run.by_method:
                top = sorted(run.by_method.items(), key=lambda kv: -kv[1])
                listed = ", ".join(f"{k} {v}" for k, v in top)
                print(f"{name} max_fold {run.max_fold} calls: {listed}")
    print("command: " + shlex.join([Path(sys.executable).name, *sys.argv]))


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Every target's runs and raw rate; prints the table and returns the figures."""
    results: dict[str, tuple[list[Run], float]] = {}
    with tempfile.TemporaryDirectory(prefix="odoo-post-bench-") as tmp:
        directory = Path(tmp)
        if not args.no_sandbox:
            results["sandbox"] = await bench_target(
                "sandbox", sandbox_odoo, args, directory, fresh=True
            )
        if args.odoo_url:
            results["odoo"] = await bench_target(
                "odoo", lambda: real_odoo(args), args, directory, fresh=False
            )
    print_table(results, args)
    return {
        "events": args.events,
        "orders": args.orders,
        "rate": args.rate,
        "targets": {
            name: {
                "raw_calls_per_second": raw,
                "runs": [
                    {
                        "max_fold": run.max_fold,
                        "events": run.events,
                        "seconds": run.seconds,
                        "rate": run.rate,
                        "calls": run.calls,
                        "calls_per_event": run.calls_per_event,
                        "lag": run.lag,
                    }
                    for run in runs
                ],
            }
            for name, (runs, raw) in results.items()
        },
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=10)
    parser.add_argument("--events", type=int, default=3000, help="per run")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="events/s stored while posting; 0: a backlog"
    )
    parser.add_argument("--max-fold", type=int, default=WriterConfig().max_fold)
    parser.add_argument("--concurrency", type=int, default=WriterConfig().concurrency)
    parser.add_argument(
        "--linger",
        type=float,
        default=WriterConfig().linger_seconds,
        help="[writer] linger_seconds of the folded runs (default %(default)s)",
    )
    parser.add_argument("--raw-calls", type=int, default=500)
    durability: list[Literal["power", "process"]] = ["power", "process"]
    parser.add_argument("--durability", choices=durability, default="power")
    parser.add_argument("--no-sandbox", action="store_true", help="only the real Odoo")
    real = parser.add_argument_group("a real Odoo 18 (optional)")
    real.add_argument("--odoo-url")
    real.add_argument("--db")
    real.add_argument("--login", help="the connector account")
    real.add_argument("--api-key-file", help="the connector account's API key")
    real.add_argument("--admin-login", default="admin")
    real.add_argument("--admin-key-file", help="API key of an account that creates master data")
    real.add_argument("--master-password", help="work in a copy of --db, dropped afterwards")
    return parser


def run(**options: Any) -> dict[str, Any]:
    """The sandbox runs with the command line's defaults, overridden by ``options``
    (``events=1000``, ``rate=500``...); returns the figures per target and run."""
    args = build_parser().parse_args([])
    for name, value in options.items():
        if not hasattr(args, name):
            raise TypeError(f"unknown option {name!r}")
        setattr(args, name, value)
    return asyncio.run(bench(args))


def main() -> None:
    parser = build_parser()
    args = parser.parse_args()
    if args.odoo_url and not (args.db and args.login and args.api_key_file and args.admin_key_file):
        parser.error("--odoo-url needs --db, --login, --api-key-file and --admin-key-file")
    if args.no_sandbox and not args.odoo_url:
        parser.error("--no-sandbox needs --odoo-url")
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
