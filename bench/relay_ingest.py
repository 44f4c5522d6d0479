"""Ingest rate of the real relay: signed 1,000-event zstd batches from concurrent gateways.

Run by hand: ``python3 bench/relay_ingest.py [--gateways 8] [--batches 25] [--rounds 3]
[--setups sqlite pg1 pg2]``. Needs PostgreSQL at ``BENCH_POSTGRES`` (default
postgres@127.0.0.1:5432) for the pg setups; it creates and drops its own databases.

Each setup starts relay processes (``python -m cloud_relay run``, default settings: SQLite at
durability ``power``) on loopback: ``sqlite`` one replica on the SQLite inbox, ``pg1`` one and
``pg2`` two replicas on one PostgreSQL database (gateway *i* posts to replica *i* mod 2). Every
gateway has its own registered key. A client process (multiprocessing, so its CPU is not the
relay's) builds each round's batches of ~250-byte ``production.reported`` events, compresses
and signs them (``created`` is checked within 300 s, so signing ahead is fine), then, timed,
posts them with one httpx client per gateway, each gateway's batches in seq order, all
gateways at once. Every answer must be 200 with ``acked_seq`` = the batch's ``last_seq``.

A warm-up round precedes the timed rounds; figures are medians over the rounds. Relay CPU is
read from ``/proc/<pid>/stat`` (all threads); ``pg CPU`` is every ``postgres`` process on this
machine, for scale only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
import httpx  # noqa: E402
import zstandard  # noqa: E402

from cloud_relay.config import StoreConfig  # noqa: E402
from cloud_relay.inbox.factory import open_inbox  # noqa: E402
from wire.batch import BATCH_PATH, encode_batch  # noqa: E402
from wire.encoding import canonical_json  # noqa: E402
from wire.events import format_timestamp  # noqa: E402
from wire.ids import new_event_id  # noqa: E402
from wire.keys import key_id, load_private_key, public_key_pem, write_keypair  # noqa: E402
from wire.signing import sign_request  # noqa: E402

ADMIN_URL = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
BATCH_EVENTS = 1000
EPOCH = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
SETUPS = {"sqlite": ("sqlite", 1), "pg1": ("postgres", 1), "pg2": ("postgres", 2)}


@dataclass(frozen=True)
class GatewayPlan:
    """What one gateway posts in a round: batches from ``first_seq``, to ``url``."""

    gateway_id: str
    key_path: Path
    url: str
    first_seq: int
    batches: int


@dataclass(frozen=True)
class Round:
    """One timed round: events accepted, wall seconds, CPU seconds of relays and PostgreSQL."""

    events: int
    wall: float
    relay_cpu: float
    pg_cpu: float

    @property
    def rate(self) -> float:
        return self.events / self.wall

    @property
    def per_relay_cpu_second(self) -> float:
        return self.events / self.relay_cpu


# --- client process -----------------------------------------------------------------------


#: A gateway's batches ready to post: (body, headers, last_seq).
Requests = list[tuple[bytes, dict[str, str], int]]


def build_requests(plan: GatewayPlan) -> Requests:
    """The signed, zstd-compressed batches of one gateway: (body, headers, last_seq)."""
    key = load_private_key(plan.key_path)
    compressor = zstandard.ZstdCompressor()
    out = []
    seq = plan.first_seq
    for _ in range(plan.batches):
        events = [
            canonical_json(
                {
                    "id": new_event_id(),
                    "gateway_id": plan.gateway_id,
                    "seq": s,
                    "type": "production.reported",
                    "occurred_at": format_timestamp(EPOCH + timedelta(milliseconds=s)),
                    "source": "opcua:ns=2;s=Line1.Counter",
                    "data": {"order": f"WH/MO/{s % 99991:05d}", "qty": 1.0, "workcenter": "L1"},
                }
            )
            for s in range(seq, seq + BATCH_EVENTS)
        ]
        last = seq + BATCH_EVENTS - 1
        body = compressor.compress(encode_batch(plan.gateway_id, seq, last, events))
        headers = sign_request("POST", plan.url, body, key)
        headers.update({"Content-Type": "application/json", "Content-Encoding": "zstd"})
        out.append((body, headers, last))
        seq = last + 1
    return out


async def post_all(requests: dict[str, Requests], urls: dict[str, str]) -> None:
    """Post every gateway's batches in order, all gateways concurrently; every answer must ack."""

    async def one_gateway(gateway_id: str) -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            for body, headers, last in requests[gateway_id]:
                response = await client.post(urls[gateway_id], content=body, headers=headers)
                if response.status_code != 200 or response.json()["acked_seq"] != last:
                    raise RuntimeError(
                        f"{gateway_id}: {response.status_code} {response.text[:200]} for ..{last}"
                    )

    async with asyncio.TaskGroup() as group:
        for gateway_id in requests:
            group.create_task(one_gateway(gateway_id))


def client_main(conn: Connection, plans: Sequence[GatewayPlan]) -> None:
    """Build and sign everything, say ready, wait for go, post, report the wall time."""
    requests = {plan.gateway_id: build_requests(plan) for plan in plans}
    urls = {plan.gateway_id: plan.url for plan in plans}
    conn.send("ready")
    conn.recv()
    start = time.perf_counter()
    asyncio.run(post_all(requests, urls))
    conn.send(time.perf_counter() - start)


# --- relay processes and measurements ---------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    """CPU of every ``postgres`` process now running on this machine."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if stat.split(" (", 1)[1].startswith("postgres)"):
                total += cpu_seconds(int(entry.name))
    return total


class RelayProcess:
    """``python -m cloud_relay run`` on a free loopback port, with default settings.

    ``durability`` sets the SQLite inbox's (the relay's default, ``power``, when None);
    ``admin_token`` opens the admin API with that bearer token.
    """

    def __init__(
        self,
        directory: Path,
        name: str,
        store_url: str,
        *,
        durability: str | None = None,
        admin_token: str | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = directory / f"relay-{name}.toml"
        text = f'[server]\nlisten = "127.0.0.1:{self.port}"\n[store]\nurl = "{store_url}"\n'
        if durability is not None:
            text += f'durability = "{durability}"\n'
        if admin_token is not None:
            text += f'[admin]\ntoken = "{admin_token}"\n'
        config.write_text(text + '[log]\nformat = "json"\n')
        self._log = (directory / f"relay-{name}.log").open("wb")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "cloud_relay", "run", "--config", str(config)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=self._log,
            stderr=self._log,
        )
        deadline = time.monotonic() + 60
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"relay exited {self._proc.returncode}; see {self._log.name}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("relay did not become healthy")
            time.sleep(0.05)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self._proc.pid)

    @property
    def pid(self) -> int:
        return self._proc.pid

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(60)
        self._log.close()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the benchmark server; dropped afterwards."""
    name = f"relay_bench_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(ADMIN_URL)._replace(path=f"/{name}"))
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def register(
    store_url: str, keys: dict[str, Path], durability: Literal["power", "process"] = "power"
) -> None:
    """Register every gateway's public key in the inbox."""
    store = open_inbox(StoreConfig(url=store_url, durability=durability))
    await store.open()
    try:
        for gateway_id, path in keys.items():
            public = load_private_key(path).public_key()
            await store.add_key(gateway_id, key_id(public), public_key_pem(public).decode())
    finally:
        await store.close()


def run_round(
    relays: Sequence[RelayProcess], keys: dict[str, Path], first_seq: int, batches: int
) -> Round:
    """One round: the client builds and signs, then posts while the relays' CPU is measured."""
    plans = [
        GatewayPlan(gateway_id, path, relays[n % len(relays)].url + BATCH_PATH, first_seq, batches)
        for n, (gateway_id, path) in enumerate(keys.items())
    ]
    ours, theirs = multiprocessing.Pipe()
    client = multiprocessing.get_context("spawn").Process(target=client_main, args=(theirs, plans))
    client.start()
    try:
        if ours.recv() != "ready":
            raise RuntimeError("client failed")
        relay_cpu = sum(r.cpu_seconds() for r in relays)
        pg_cpu = postgres_cpu_seconds()
        ours.send("go")
        if not ours.poll(600):
            raise RuntimeError("client did not finish")
        wall = ours.recv()
        relay_cpu = sum(r.cpu_seconds() for r in relays) - relay_cpu
        pg_cpu = postgres_cpu_seconds() - pg_cpu
    finally:
        client.join(60)
    if client.exitcode != 0:
        raise RuntimeError(f"client exited {client.exitcode}")
    return Round(len(plans) * batches * BATCH_EVENTS, wall, relay_cpu, pg_cpu)


def run_setup(
    directory: Path, setup: str, store_url: str, keys: dict[str, Path], batches: int, rounds: int
) -> list[Round]:
    """Warm-up plus timed rounds against fresh relays on ``store_url``."""
    replicas = SETUPS[setup][1]
    asyncio.run(register(store_url, keys))
    relays = [RelayProcess(directory, f"{setup}-{n}", store_url) for n in range(replicas)]
    try:
        seq = 1
        run_round(relays, keys, seq, 2)  # connections, key lookups, first pages of the tables
        seq += 2 * BATCH_EVENTS
        timed = []
        for _ in range(rounds):
            timed.append(run_round(relays, keys, seq, batches))
            seq += batches * BATCH_EVENTS
            print(f"  {setup}: {timed[-1].rate:,.0f} events/s", flush=True)
        return timed
    finally:
        for relay in relays:
            relay.stop()


def median(rounds: Sequence[Round], attr: str) -> float:
    return float(statistics.median(getattr(r, attr) for r in rounds))


def run(
    gateways: int = 8,
    batches: int = 25,
    rounds: int = 3,
    setups: Sequence[str] = tuple(SETUPS),
) -> dict[str, Any]:
    """Every setup's rounds, then the table; returns the medians per setup."""
    results: dict[str, list[Round]] = {}
    with tempfile.TemporaryDirectory(prefix="relay-bench-") as tmp:
        directory = Path(tmp)
        keys = {}
        for n in range(gateways):
            keys[f"bench-gw-{n}"] = directory / f"gw-{n}.pem"
            write_keypair(keys[f"bench-gw-{n}"])
        for setup in setups:
            if SETUPS[setup][0] == "sqlite":
                (directory / setup).mkdir()
                url = f"sqlite:///{directory / setup / 'inbox.db'}"
                results[setup] = run_setup(directory, setup, url, keys, batches, rounds)
            else:
                with postgres_database() as url:
                    results[setup] = run_setup(directory, setup, url, keys, batches, rounds)
    per_round = gateways * batches * BATCH_EVENTS
    print(
        f"\n{gateways} gateways x {batches} batches of {BATCH_EVENTS} events"
        f" (zstd, signed) = {per_round:,} events per round; medians of {rounds} rounds;"
        f" {os.cpu_count()} CPUs"
    )
    print(
        f"{'setup':<8}{'replicas':>9}{'events/s':>11}{'relay CPU s':>13}"
        f"{'ev/relay CPU-s':>16}{'µs CPU/ev':>11}{'pg CPU s':>10}"
    )
    out: dict[str, Any] = {"gateways": gateways, "events_per_round": per_round, "setups": {}}
    for setup, timed in results.items():
        cpu = median(timed, "relay_cpu")
        postgres = SETUPS[setup][0] == "postgres"
        pg_cpu = f"{median(timed, 'pg_cpu'):.2f}" if postgres else "-"
        out["setups"][setup] = {
            "replicas": SETUPS[setup][1],
            "rate": median(timed, "rate"),
            "relay_cpu_seconds": cpu,
            "events_per_relay_cpu_second": median(timed, "per_relay_cpu_second"),
            "relay_cpu_us": cpu / per_round * 1e6,
            "pg_cpu_seconds": median(timed, "pg_cpu") if postgres else None,
        }
        print(
            f"{setup:<8}{SETUPS[setup][1]:>9}{median(timed, 'rate'):>11,.0f}{cpu:>13.2f}"
            f"{median(timed, 'per_relay_cpu_second'):>16,.0f}{cpu / per_round * 1e6:>11.1f}"
            f"{pg_cpu:>10}"
        )
    if "pg1" in results and "pg2" in results:
        ratio = median(results["pg2"], "rate") / median(results["pg1"], "rate")
        print(f"PostgreSQL 2 replicas / 1 replica: {ratio:.2f}x events/s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gateways", type=int, default=8)
    parser.add_argument("--batches", type=int, default=25, help="per gateway and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--setups", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    args = parser.parse_args()
    run(args.gateways, args.batches, args.rounds, args.setups)


if __name__ == "__main__":
    main()
