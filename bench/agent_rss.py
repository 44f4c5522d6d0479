"""Memory of a whole agent process, idle and with a large backlog queued.

Run by hand: ``python3 bench/agent_rss.py``. ``AGENT_RSS_EVENTS`` (default 1,000,000) events are
put in the queue first; then ``edge-agent run`` starts with the relay unreachable (so nothing
drains), an MQTT subscription on a private mosquitto and, with ``--opcua``, an OPC UA endpoint
(asyncua is imported only when OPC UA is configured). Its RSS is read from /proc after it has
settled. Prints one line per case.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agent.queue.config import QueueConfig
from agent.queue.model import NewEvent
from agent.queue.store import QueueStore
from wire.keys import write_keypair


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


def run_agent(workdir: Path, mqtt_port: int, opcua: bool) -> float:
    config = workdir / "agent.toml"
    text = (
        f'[gateway]\nid = "gw-rss"\nsigning_key_file = "{workdir}/gw.pem"\n'
        f'state_dir = "{workdir}/state"\n[relay]\nurl = "http://127.0.0.1:9"\n'
        f'[health]\nlisten = "127.0.0.1:{free_port()}"\n[log]\nlevel = "WARNING"\n'
        f'[mqtt]\nport = {mqtt_port}\n[[mqtt.subscriptions]]\ntopic = "t/#"\n'
        f'event = "production.reported"\n[mqtt.subscriptions.fields]\norder = "/o"\nqty = "/q"\n'
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
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(proc.pid))
            time.sleep(0.5)
        return max(peak, rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opcua", action="store_true", help="also configure an OPC UA source")
    args = parser.parse_args()
    count = int(os.environ.get("AGENT_RSS_EVENTS", "1000000"))
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        workdir = Path(tmp)
        write_keypair(workdir / "gw.pem")
        (workdir / "state").mkdir()
        port = free_port()
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            idle = run_agent(workdir, port, args.opcua)
            print(f"agent RSS, empty queue{' +opcua' if args.opcua else ''}: {idle:.1f} MB")
            started = time.monotonic()
            asyncio.run(fill(workdir / "state" / "queue.db", count))
            print(f"filled {count:,} events in {time.monotonic() - started:.0f} s")
            loaded = run_agent(workdir, port, args.opcua)
            print(f"agent RSS, {count:,} queued{' +opcua' if args.opcua else ''}: {loaded:.1f} MB")
        finally:
            broker.terminate()
            broker.wait()


if __name__ == "__main__":
    main()
