"""Runs the demo: line simulator, MQTT feed, relay, WAN proxy and the agent, then checks totals.

The agent and the relay run as child processes exactly as they would in a plant, the agent
configured from a TOML file; the demo watches the agent's ``/healthz`` and the relay's admin API.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from agent.demo.feed import (
    COMPONENT,
    TOPIC,
    Broker,
    ConsumptionFeed,
    die_with_parent,
    mosquitto_path,
)
from agent.demo.line import NAMESPACE_URI, LineTally, SimulatedLine
from agent.demo.proxy import CuttableProxy
from wire.keys import write_keypair

GATEWAY_ID = "demo-line1"
ADMIN_TOKEN = "demo-admin-token"
ORDERS = [f"WH/MO/{n:05d}" for n in range(1, 100)]
FINISHED = "WIDGET"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``edge-agent demo``; the exit code says whether the totals agreed."""
    workdir = Path(tempfile.mkdtemp(prefix="plant-link-demo-"))
    signal.signal(signal.SIGTERM, _interrupt)  # stop as cleanly on SIGTERM as on Ctrl-C
    try:
        return asyncio.run(_demo(args, workdir))
    except KeyboardInterrupt:
        print("\ndemo stopped")
        return 1
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _agent_toml(
    workdir: Path, relay_port: int, health_port: int, opcua: str, mqtt_port: int | None
) -> str:
    text = f"""
[gateway]
id = "{GATEWAY_ID}"
signing_key_file = "{workdir}/gateway.pem"
state_dir = "{workdir}/agent-state"

[relay]
url = "http://127.0.0.1:{relay_port}"
batch_max_age_ms = 100
backoff_max_seconds = 2.0

[health]
listen = "127.0.0.1:{health_port}"

[log]
format = "text"
level = "WARNING"

[opcua]
endpoint = "{opcua}"
reconnect_max_seconds = 2.0

[opcua.order.node]
namespace_uri = "{NAMESPACE_URI}"
identifier = "s=Line1.CurrentOrder"

[[opcua.nodes]]
name = "good-parts"
namespace_uri = "{NAMESPACE_URI}"
identifier = "s=Line1.GoodParts"
rule = "counter"
event = "production.reported"
uom = "Units"

[[opcua.nodes]]
name = "scrap-parts"
namespace_uri = "{NAMESPACE_URI}"
identifier = "s=Line1.ScrapParts"
rule = "counter"
event = "scrap.reported"
product = "{FINISHED}"

[[opcua.nodes]]
name = "running"
namespace_uri = "{NAMESPACE_URI}"
identifier = "s=Line1.Running"
rule = "state"
workcenter = "Line 1"
states = {{ true = "operation.started", false = "operation.paused" }}

[[opcua.nodes]]
name = "temperature"
namespace_uri = "{NAMESPACE_URI}"
identifier = "s=Line1.Temperature"
rule = "sample"
unit = "degC"
"""
    if mqtt_port is not None:
        text += f"""
[mqtt]
host = "127.0.0.1"
port = {mqtt_port}

[[mqtt.subscriptions]]
topic = "{TOPIC}"
qos = 1
event = "material.consumed"
dedupe_key = "/msg_id"
[mqtt.subscriptions.fields]
order = "/order"
product = "/product"
qty = "/qty"
"""
    return text


def _relay_toml(workdir: Path, port: int) -> str:
    return f"""
[server]
listen = "127.0.0.1:{port}"

[store]
url = "sqlite:///{workdir}/relay-inbox.db"

[admin]
token = "{ADMIN_TOKEN}"

[log]
format = "text"
level = "WARNING"
"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


class _Processes:
    """Child processes, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        with (self._workdir / f"{name}.log").open("ab") as log:
            proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def _wait_http(client: httpx.AsyncClient, url: str, limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url)).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer within {limit_seconds:.0f} s")
        await asyncio.sleep(0.1)


async def _demo(args: argparse.Namespace, workdir: Path) -> int:
    py = sys.executable
    procs = _Processes(workdir)
    key = workdir / "gateway.pem"
    write_keypair(key)
    relay_port, health_port = free_port(), args.health_port or free_port()
    (workdir / "relay.toml").write_text(_relay_toml(workdir, relay_port))
    relay_cfg = ["--config", str(workdir / "relay.toml")]
    added = await asyncio.to_thread(
        subprocess.run,
        [
            py,
            "-m",
            "cloud_relay",
            "gateway",
            "add",
            "--id",
            GATEWAY_ID,
            "--public-key",
            f"{key}.pub",
            *relay_cfg,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if added.returncode != 0:
        print(f"could not register the gateway with the relay:\n{added.stderr}", file=sys.stderr)
        return 1

    line = SimulatedLine(free_port(), ORDERS, seed=7)
    await line.start()
    broker: Broker | None = None
    binary = mosquitto_path()
    if binary:
        broker = Broker(binary, free_port())
    else:
        print(
            "mosquitto is not installed: the MQTT consumption feed is left out "
            "(apt-get install mosquitto to see it)"
        )
    proxy = CuttableProxy("127.0.0.1", relay_port)
    await proxy.start()
    (workdir / "agent.toml").write_text(
        _agent_toml(
            workdir, proxy.port, health_port, line.endpoint, broker.port if broker else None
        )
    )
    stop = asyncio.Event()
    try:
        procs.start("relay", [py, "-m", "cloud_relay", "run", *relay_cfg])
        procs.start("agent", [py, "-m", "agent", "run", "--config", str(workdir / "agent.toml")])
        async with httpx.AsyncClient(timeout=5) as client:
            admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
            await _wait_http(client, f"http://127.0.0.1:{relay_port}/healthz", 30)
            await _wait_http(client, f"http://127.0.0.1:{health_port}/healthz", 30)
            print(f"health page: http://127.0.0.1:{health_port}/   (working dir {workdir})")
            tasks = [asyncio.create_task(line.run(stop))]
            if broker:
                tasks.append(
                    asyncio.create_task(ConsumptionFeed(broker.port, line.tally).run(stop))
                )
            await _produce(args, client, proxy, health_port, relay_port, admin, line.tally)
            stop.set()
            await asyncio.gather(*tasks)
            await proxy.restore()
            print("line stopped; waiting for the agent to drain its queue …")
            await _drain(client, health_port, relay_port, admin, line.tally)
            return await _compare(client, relay_port, admin, line.tally)
    finally:
        stop.set()
        procs.stop_all()
        await proxy.close()
        await line.stop()
        if broker:
            broker.stop()


async def _status(
    client: httpx.AsyncClient, health_port: int, relay_port: int, admin: dict[str, str]
) -> tuple[dict[str, Any], int]:
    agent: dict[str, Any] = {}
    with contextlib.suppress(httpx.HTTPError, ValueError):
        agent = (await client.get(f"http://127.0.0.1:{health_port}/healthz")).json()
    relay_acked = -1
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        gw = (
            await client.get(
                f"http://127.0.0.1:{relay_port}/v1/gateways/{GATEWAY_ID}", headers=admin
            )
        ).json()
        relay_acked = int(gw["acked_seq"])
    return agent, relay_acked


def _progress(
    elapsed: float, tally: LineTally, agent: dict[str, Any], relay_acked: int, cut: bool
) -> str:
    comps = agent.get("components", {})
    queue = comps.get("queue", {})
    return (
        f"{elapsed:5.0f}s  line {sum(tally.good.values()):5d} good {sum(tally.scrap.values()):3d}"
        f" scrap | agent read {queue.get('enqueued_total', 0):5d}"
        f" queued {queue.get('pending', 0):5d}"
        f" | relay stored through seq {relay_acked:5d} | {agent.get('status', '?'):5s}"
        f"{'  WAN CUT' if cut else ''}"
    )


async def _produce(
    args: argparse.Namespace,
    client: httpx.AsyncClient,
    proxy: CuttableProxy,
    health_port: int,
    relay_port: int,
    admin: dict[str, str],
    tally: LineTally,
) -> None:
    start = time.monotonic()
    outage_at = args.duration / 2 - args.outage_seconds / 2
    outage_until = outage_at + args.outage_seconds
    while (elapsed := time.monotonic() - start) < args.duration:
        if args.outage_seconds > 0 and outage_at <= elapsed < outage_until and not proxy.is_cut:
            print("--- WAN outage: the link to the relay is cut ---")
            await proxy.cut()
        elif proxy.is_cut and elapsed >= outage_until:
            print("--- WAN restored ---")
            await proxy.restore()
        agent, relay_acked = await _status(client, health_port, relay_port, admin)
        print(_progress(elapsed, tally, agent, relay_acked, proxy.is_cut), flush=True)
        await asyncio.sleep(1.0)


async def _drain(
    client: httpx.AsyncClient,
    health_port: int,
    relay_port: int,
    admin: dict[str, str],
    tally: LineTally,
    limit_seconds: float = 120.0,
) -> None:
    deadline = time.monotonic() + limit_seconds
    start = time.monotonic()
    settled, last_line = 0, ""
    while time.monotonic() < deadline:
        agent, relay_acked = await _status(client, health_port, relay_port, admin)
        queue = agent.get("components", {}).get("queue", {})
        line = _progress(time.monotonic() - start, tally, agent, relay_acked, False)
        if line.split("s ", 1)[1] != last_line:
            print(line, flush=True)
            last_line = line.split("s ", 1)[1]
        acked = queue.get("acked_seq", -1)
        done = queue.get("pending") == 0 and relay_acked == acked
        settled = settled + 1 if done else 0
        if settled >= 2:  # two quiet readings: the sources have delivered their last values
            return
        await asyncio.sleep(1.0)
    print(f"the queue did not drain within {limit_seconds:.0f} s", file=sys.stderr)


async def _relay_totals(
    client: httpx.AsyncClient, relay_port: int, admin: dict[str, str]
) -> dict[str, Counter[str]]:
    totals: dict[str, Counter[str]] = {"good": Counter(), "scrap": Counter(), "consumed": Counter()}
    after = 0
    while True:
        resp = await client.get(
            f"http://127.0.0.1:{relay_port}/v1/gateways/{GATEWAY_ID}/events",
            params={"after_seq": after, "limit": 1000},
            headers=admin,
        )
        resp.raise_for_status()
        events = resp.json()["events"]
        if not events:
            return totals
        for item in events:
            event = item.get("event", item)
            data = event["data"]
            if event["type"] == "production.reported":
                totals["good"][data["order"]] += data["qty"]
            elif event["type"] == "scrap.reported":
                totals["scrap"][data["order"]] += data["qty"]
            elif event["type"] == "material.consumed":
                totals["consumed"][data["order"]] += data["qty"]
            after = max(after, int(event["seq"]))


async def _compare(
    client: httpx.AsyncClient, relay_port: int, admin: dict[str, str], tally: LineTally
) -> int:
    totals = await _relay_totals(client, relay_port, admin)
    line_side = {"good": tally.good, "scrap": tally.scrap, "consumed": tally.consumed}
    print(f"\n{'order':<14}{'what':<10}{'line':>8}{'relay':>8}")
    ok = True
    for order in tally.orders:
        for what in ("good", "scrap", "consumed"):
            made, got = line_side[what][order], totals[what][order]
            if what == "consumed" and not made and not got:
                continue
            mark = "" if made == got else "  MISMATCH"
            ok = ok and made == got
            print(f"{order:<14}{what:<10}{made:>8g}{got:>8g}{mark}")
    print(f"\n{COMPONENT} consumption comes over MQTT; parts and scrap over OPC UA.")
    print(
        "totals agree: every count the line made is at the relay exactly once"
        if ok
        else "totals DISAGREE"
    )
    return 0 if ok else 1
