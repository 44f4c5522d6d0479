"""Runs the demo: line simulator, MQTT feed, relay, WAN proxy, agent and Odoo, then checks totals.

The agent, the relay and the Odoo sandbox run as child processes exactly as they would in a
plant, the agent configured from a TOML file; the demo watches the agent's ``/healthz``, the
relay's admin API and ``/metrics``, and at the end compares the line's own tally with what the
relay stored and what Odoo holds.
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
from pathlib import Path
from typing import IO

import httpx

from agent.demo.comparison import compare, report_dead_letters
from agent.demo.feed import (
    BOLTS_PER_PART,
    COMPONENT,
    TOPIC,
    Broker,
    ConsumptionFeed,
    die_with_parent,
    mosquitto_path,
)
from agent.demo.line import NAMESPACE_URI, SimulatedLine
from agent.demo.odoo import (
    DemoError,
    OdooTarget,
    real_target,
    relay_odoo_toml,
    set_up_orders,
    start_sandbox,
)
from agent.demo.progress import Watch, wait_until_drained, wait_until_written, watch_production
from agent.demo.proxy import CuttableProxy
from wire.keys import write_keypair

GATEWAY_ID = "demo-line1"
ADMIN_TOKEN = "demo-admin-token"
FINISHED = "WIDGET"
WORKCENTER = "Line 1"
"""The work centre of the line's state rule; Odoo's work orders on it get the time logs."""
ORDER_QTY = 200
"""Parts per order, on the line and in Odoo's MOs."""
SECONDS_PER_ORDER = 10.0
"""The line makes ORDER_QTY parts in a little more than this."""
WRITER_LIMIT_SECONDS = 120.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def orders_for(duration_seconds: float) -> int:
    """MOs enough for the line to never run out during the run."""
    return int(duration_seconds // SECONDS_PER_ORDER) + 2


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``edge-agent demo``; the exit code says whether the totals agreed."""
    target = real_target(args)
    workdir = Path(tempfile.mkdtemp(prefix="plant-link-demo-"))
    try:
        return asyncio.run(_demo(args, workdir, target))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ndemo stopped")
        return 1
    finally:
        if args.keep:
            print(f"working directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def intro(args: argparse.Namespace, target: OdooTarget | None) -> str:
    """The line saying what is about to run."""
    odoo = target.label if target is not None else f"an Odoo {args.odoo_version} sandbox"
    outage = (
        f", with the WAN to the relay cut for {args.outage_seconds:g} s half-way"
        if args.outage_seconds > 0
        else ""
    )
    return (
        f"Running for {args.duration:g} s on loopback: a simulated line (OPC UA) and an MES feed "
        f"(MQTT) into the edge agent, the agent to the cloud relay{outage}, the relay into "
        f"{odoo}; then line, relay and Odoo are compared per order."
    )


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
workcenter = "{WORKCENTER}"
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


def _relay_toml(workdir: Path, port: int, target: OdooTarget) -> str:
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
{relay_odoo_toml(target)}"""


class _Processes:
    """Child processes, stopped together."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._procs: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Output to ``NAME.log`` in the working directory."""
        with (self._workdir / f"{name}.log").open("ab") as log:
            return self._spawn(argv, log, subprocess.STDOUT)

    def start_piped(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Standard output to the demo (the child's first line says where it listens), standard
        error to ``NAME.log``."""
        with (self._workdir / f"{name}.log").open("ab") as log:
            return self._spawn(argv, subprocess.PIPE, log)

    def _spawn(
        self, argv: list[str], stdout: int | IO[bytes], stderr: int | IO[bytes]
    ) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            argv,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        self._procs.append(proc)
        return proc

    def stop_all(self) -> None:
        """SIGTERM to every child still running, then wait (a second call does nothing)."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self._procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


async def _wait_http(client: httpx.AsyncClient, url: str, limit_seconds: float) -> None:
    deadline = time.monotonic() + limit_seconds
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await client.get(url)).status_code < 500:
                return
        if time.monotonic() > deadline:
            raise DemoError(f"{url} did not answer within {limit_seconds:.0f} s")
        await asyncio.sleep(0.1)


async def _demo(args: argparse.Namespace, workdir: Path, target: OdooTarget | None) -> int:
    main = asyncio.current_task()
    assert main is not None
    # Stop on SIGTERM as on Ctrl-C: cancel this task only, so that the line keeps answering the
    # agent while the processes stop.
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, main.cancel)
    procs = _Processes(workdir)
    print(intro(args, target))
    try:
        if target is None:
            target = await start_sandbox(procs.start_piped, workdir, free_port(), args.odoo_version)
        print(f"posting into {target.label}")
        orders = await set_up_orders(
            target,
            orders_for(args.duration),
            order_qty=ORDER_QTY,
            finished=FINISHED,
            component=COMPONENT,
            component_per_unit=BOLTS_PER_PART,
            workcenter=WORKCENTER,
        )
        print(f"{len(orders)} confirmed manufacturing orders in Odoo: {orders[0]} … {orders[-1]}")
        return await _line_to_odoo(args, workdir, procs, target, orders)
    finally:
        procs.stop_all()


async def _line_to_odoo(
    args: argparse.Namespace,
    workdir: Path,
    procs: _Processes,
    target: OdooTarget,
    orders: list[str],
) -> int:
    py = sys.executable
    key = workdir / "gateway.pem"
    write_keypair(key)
    relay_port, health_port = free_port(), args.health_port or free_port()
    relay_config = workdir / "relay.toml"
    relay_config.write_text(_relay_toml(workdir, relay_port, target))
    relay_cfg = ["--config", str(relay_config)]
    register = ["gateway", "add", "--id", GATEWAY_ID, "--public-key", f"{key}.pub"]
    added = await asyncio.to_thread(
        subprocess.run,
        [py, "-m", "cloud_relay", *register, *relay_cfg],
        capture_output=True,
        text=True,
        check=False,
    )
    if added.returncode != 0:
        raise DemoError(f"could not register the gateway with the relay:\n{added.stderr}")

    line = SimulatedLine(free_port(), orders, seed=7)
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
    tasks: list[asyncio.Task[None]] = []
    try:
        procs.start("relay", [py, "-m", "cloud_relay", "run", *relay_cfg])
        procs.start("agent", [py, "-m", "agent", "run", "--config", str(workdir / "agent.toml")])
        async with httpx.AsyncClient(timeout=5) as client:
            watch = Watch(client, health_port, relay_port, GATEWAY_ID, ADMIN_TOKEN, line.tally)
            await _wait_http(client, f"http://127.0.0.1:{relay_port}/healthz", 30)
            await _wait_http(client, f"http://127.0.0.1:{health_port}/healthz", 30)
            print(f"agent health page: http://127.0.0.1:{health_port}/   (working dir {workdir})")
            print(
                f"relay admin page:  http://127.0.0.1:{relay_port}/admin   "
                f"(log in with the admin token {ADMIN_TOKEN})"
            )
            tasks.append(asyncio.create_task(line.run(stop, parts_per_order=ORDER_QTY)))
            if broker:
                tasks.append(
                    asyncio.create_task(ConsumptionFeed(broker.port, line.tally).run(stop))
                )
            await watch_production(args, watch, proxy)
            stop.set()
            await asyncio.gather(*tasks)
            await proxy.restore()
            print("line stopped; waiting for the agent to drain its queue …")
            drained = await wait_until_drained(watch)
            print("agent drained; waiting for the relay to post the rest into Odoo …")
            written = await wait_until_written(watch, WRITER_LIMIT_SECONDS)
            agree = await compare(watch, target, COMPONENT)
            dead = await report_dead_letters(watch, relay_config)
            return 0 if drained and written and agree and not dead else 1
    finally:
        # Processes first, while the line still answers the agent's goodbye (in a thread: the
        # line's OPC UA server runs on this loop). Run as root, mosquitto drops its privileges,
        # which clears the signal that would stop it with the demo: only stop() does.
        stop.set()
        try:
            await asyncio.to_thread(procs.stop_all)
        finally:
            if broker:
                broker.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await proxy.close()
        await line.stop()
