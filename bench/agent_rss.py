"""Memory of a whole agent process, idle and with a large backlog queued.

Run by hand: ``python3 bench/agent_rss.py``. ``AGENT_RSS_EVENTS`` (default 1,000,000) events are
put in the queue first; then ``edge-agent run`` starts with the relay unreachable (so nothing
drains), an MQTT subscription on a private mosquitto and, with ``--opcua``, an OPC UA endpoint
(asyncua is imported only when OPC UA is configured). Its RSS is read from /proc every half
second while it settles (``--settle-seconds``, default 15) and the peak is reported. Beside it,
in the same run: a bare interpreter (the floor of any Python agent) and an interpreter that has
only imported the agent's main modules (CLI, composition root, the configured sources).
Prints one line per case.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.queue.config import QueueConfig
from agent.queue.model import NewEvent
from agent.queue.store import QueueStore
from wire.keys import write_keypair

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def fill(path: Path, count: int) -> None:
    queue = await QueueStore.open(path, "gw-rss", QueueConfig(durability="process"))
    now = datetime.now(UTC)
    event = NewEvent("production.reported", now, "bench", {"order": "WH/MO/00001", "qty": 1.0})
    for _ in range(0, count, 2000):
        await queue.enqueue([event] * 2000)
    await queue.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_agent(
    workdir: Path, mqtt_port: int, opcua: bool, settle_seconds: float, mqtt: bool = True
) -> float:
    """Peak RSS in MB of ``edge-agent run`` over ``settle_seconds``."""
    config = workdir / "agent.toml"
    text = (
        f'[gateway]\nid = "gw-rss"\nsigning_key_file = "{workdir}/gw.pem"\n'
        f'state_dir = "{workdir}/state"\n[relay]\nurl = "http://127.0.0.1:9"\n'
        f'[health]\nlisten = "127.0.0.1:{free_port()}"\n[log]\nlevel = "WARNING"\n'
    )
    if mqtt:
        text += (
            f'[mqtt]\nport = {mqtt_port}\n[[mqtt.subscriptions]]\ntopic = "t/#"\n'
            'event = "production.reported"\n[mqtt.subscriptions.fields]\norder = "/o"\n'
            'qty = "/q"\n'
        )
    if opcua:
        text += (
            f'[opcua]\nendpoint = "opc.tcp://127.0.0.1:{free_port()}/"\n'
            '[opcua.order]\nvalue = "WH/MO/00001"\n[[opcua.nodes]]\nname = "c"\n'
            'namespace_uri = "urn:x"\nidentifier = "s=C"\nrule = "counter"\n'
            'event = "production.reported"\n'
        )
    config.write_text(text)
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--config", str(config)])
    try:
        peak = 0.0
        deadline = time.monotonic() + settle_seconds
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.5)
        return max(peak, rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


#: Prints the interpreter's own RSS in kB after the given imports.
_RSS_SELF = (
    "import pathlib\n"
    "print(next(l.split()[1] for l in pathlib.Path('/proc/self/status').read_text().splitlines()"
    " if l.startswith('VmRSS:')))"
)


def interpreter_mb(imports: str) -> float:
    """RSS in MB of a fresh interpreter after ``imports`` (Python source; may be empty)."""
    out = subprocess.run(
        [sys.executable, "-c", imports + "\n" + _RSS_SELF],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return int(out.stdout.strip()) / 1024


def agent_imports(opcua: bool, mqtt: bool = True) -> str:
    """The agent's main modules for the configuration run_agent writes: the CLI, the
    composition root and the configured sources (not what they import lazily at start)."""
    modules = ["agent.cli", "agent.app"] + (["agent.sources.mqtt.source"] if mqtt else [])
    if opcua:
        modules.append("agent.sources.opcua.source")
    return "\n".join(f"import {m}" for m in modules)


def run(
    events: int = 1_000_000, opcua: bool = False, settle_seconds: float = 15.0, mqtt: bool = True
) -> dict[str, Any]:
    """Idle, then with ``events`` queued; the interpreter floors beside; printed and returned."""
    label = (" mqtt" if mqtt else "") + (" +opcua" if opcua else "")
    floor = interpreter_mb("")
    imported = interpreter_mb(agent_imports(opcua, mqtt))
    print(f"bare interpreter: {floor:.1f} MB; agent modules imported{label}: {imported:.1f} MB")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        write_keypair(workdir / "gw.pem")
        (workdir / "state").mkdir()
        port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            idle = run_agent(workdir, port, opcua, settle_seconds, mqtt)
            print(f"agent RSS, empty queue{label}: {idle:.1f} MB", flush=True)
            started = time.monotonic()
            asyncio.run(fill(workdir / "state" / "queue.db", events))
            fill_seconds = time.monotonic() - started
            print(f"filled {events:,} events in {fill_seconds:.0f} s", flush=True)
            loaded = run_agent(workdir, port, opcua, settle_seconds, mqtt)
            print(f"agent RSS, {events:,} queued{label}: {loaded:.1f} MB")
        finally:
            broker.terminate()
            broker.wait()
    return {
        "events": events,
        "opcua": opcua,
        "mqtt": mqtt,
        "idle_mb": idle,
        "loaded_mb": loaded,
        "interpreter_mb": floor,
        "imports_mb": imported,
        "fill_seconds": fill_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--opcua", action="store_true", help="also configure an OPC UA source")
    parser.add_argument("--no-mqtt", action="store_true", help="no MQTT source (OPC UA only)")
    parser.add_argument("--settle-seconds", type=float, default=15.0)
    args = parser.parse_args()
    count = int(os.environ.get("AGENT_RSS_EVENTS", "1000000"))
    run(count, args.opcua, args.settle_seconds, mqtt=not args.no_mqtt)


if __name__ == "__main__":
    main()
