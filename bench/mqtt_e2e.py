"""End to end over MQTT: publish -> relay commit, beside a Mosquitto edge -> hub bridge.

Run by hand: ``python3 bench/mqtt_e2e.py [--messages 30000]``.

Two cases carry the same load in the same run: ``--messages`` QoS 1 messages of 200 bytes of
JSON on three topics, published by ``mosquitto_pub -l`` (one per topic, at once) into a fresh
edge mosquitto on loopback.

- ``bridge``: the edge mosquitto bridges ``plant/#`` at QoS 1 to a hub mosquitto, where
  ``mosquitto_sub -q 1`` (a persistent session made beforehand) counts them. Timed from the
  first publish to the last message at the hub. Neither broker fsyncs a message: a power cut
  loses what is in flight.
- ``agent``: the real agent (``python -m agent run``: one MQTT subscription with a dedupe key,
  queue durability ``power``, shipped uploader defaults) uploads to the real relay
  (``python -m cloud_relay run``: SQLite inbox, durability ``power``), each a child process.
  Timed from the first publish until a read-only connection to the relay's inbox, polled every
  5 ms, sees the last event committed. Every message is fsynced at the edge before its PUBACK
  and at the relay before the gateway deletes it.

Each case first proves its path with probe messages. Beside the rates: CPU seconds of every
process of the case (from /proc), per message, to show where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.mqtt_ingest import TOPICS, publish
from bench.relay_ingest import RelayProcess, cpu_seconds, register
from tests.fixtures.mosquitto import Mosquitto, running_mosquitto
from wire.keys import write_keypair

ROOT = Path(__file__).resolve().parent.parent
GATEWAY_ID = "bench-mqtt-e2e"
FILTER = "plant/+/produced"
WAIT_SECONDS = 300.0
PROBE_TOPIC = "plant/probe/produced"


def _probe(n: int) -> bytes:
    return json.dumps({"order": "WH/MO/00001", "qty": 1, "msg_id": f"probe-{n}"}).encode()


def _publish_one(broker: Mosquitto, topic: str, payload: bytes) -> None:
    subprocess.run(
        [
            *("mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1"),
            *("-t", topic, "-m", payload.decode()),
        ],
        check=True,
    )


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in pids.items()}


def _broker_pid(broker: Mosquitto) -> int:
    assert broker.process is not None
    return broker.process.pid


# --- the bridge ---------------------------------------------------------------------------


def measure_bridge(messages: int, tmp: Path) -> dict[str, Any]:
    """Publish into an edge mosquitto bridged to a hub; time until the hub's subscriber has all."""
    with running_mosquitto(tmp / "hub") as hub:
        bridge = [
            "connection hub",
            f"address {hub.host}:{hub.port}",
            "topic plant/# out 1",
            "topic probe/# out 1",
            "cleansession false",
            "bridge_protocol_version mqttv311",
            "start_type automatic",
            "restart_timeout 1",
        ]
        with running_mosquitto(tmp / "edge", bridge) as edge:
            sub = [
                *("mosquitto_sub", "-h", hub.host, "-p", str(hub.port), "-V", "mqttv311"),
                *("-c", "-i", "bench-hub-sub", "-q", "1", "-t", "plant/#"),
            ]
            subprocess.run([*sub, "-E"], check=True)  # the persistent session, subscribed
            _wait_bridge(edge, hub)
            counter = subprocess.Popen([*sub, "-C", str(messages)], stdout=subprocess.DEVNULL)
            pids = {"edge mosquitto": _broker_pid(edge), "hub mosquitto": _broker_pid(hub)}
            before = _cpu(pids)
            started = time.perf_counter()
            publish(edge, messages)
            if counter.wait(timeout=WAIT_SECONDS) != 0:
                raise RuntimeError("the hub's mosquitto_sub failed")
            seconds = time.perf_counter() - started
            after = _cpu(pids)
    return _figures(messages, seconds, before, after)


def _wait_bridge(edge: Mosquitto, hub: Mosquitto) -> None:
    """Publish probes at the edge until one arrives at the hub (the bridge is up)."""
    deadline = time.monotonic() + 60
    n = 0
    while time.monotonic() < deadline:
        watcher = subprocess.Popen(
            [
                *("mosquitto_sub", "-h", hub.host, "-p", str(hub.port), "-q", "1"),
                *("-t", "probe/#", "-C", "1", "-W", "3"),
            ],
            stdout=subprocess.DEVNULL,
        )
        while watcher.poll() is None:
            n += 1
            _publish_one(edge, "probe/bridge", b"probe")
            with contextlib.suppress(subprocess.TimeoutExpired):
                watcher.wait(0.2)
        if watcher.returncode == 0:
            return
    raise RuntimeError(f"the bridge carried none of {n} probes in 60 s")


# --- the agent and the relay --------------------------------------------------------------


def agent_config(directory: Path, relay_url: str, broker: Mosquitto) -> Path:
    path = directory / "agent.toml"
    path.write_text(
        f'[gateway]\nid = "{GATEWAY_ID}"\nsigning_key_file = "{directory / "gw.pem"}"\n'
        f'state_dir = "{directory / "agent"}"\n'
        f'[relay]\nurl = "{relay_url}"\n'
        f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\n'
        f'[[mqtt.subscriptions]]\ntopic = "{FILTER}"\nqos = 1\nevent = "production.reported"\n'
        'dedupe_key = "/msg_id"\n'
        '[mqtt.subscriptions.fields]\norder = "/order"\nqty = "/qty"\n'
        '[health]\nlisten = ""\n[log]\nlevel = "WARNING"\nformat = "json"\n'
    )
    return path


class _Committed:
    """The relay's acked seq for the gateway, read from its inbox file read-only."""

    def __init__(self, inbox: Path) -> None:
        self._db = sqlite3.connect(f"file:{inbox}?mode=ro", uri=True)

    def acked(self) -> int:
        row = self._db.execute(
            "SELECT acked_seq FROM gateways WHERE gateway_id = ?", (GATEWAY_ID,)
        ).fetchone()
        return int(row[0]) if row else 0

    def wait_for(self, seq: int, poll: float = 0.005) -> None:
        deadline = time.monotonic() + WAIT_SECONDS
        while self.acked() < seq:
            if time.monotonic() > deadline:
                raise RuntimeError(f"relay did not commit seq {seq} in {WAIT_SECONDS:.0f} s")
            time.sleep(poll)

    def close(self) -> None:
        self._db.close()


@contextlib.contextmanager
def _agent(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "run", "--config", str(config)],
            cwd=ROOT,
            stdout=out,
            stderr=out,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            proc.wait(60)


def measure_agent(messages: int, tmp: Path) -> dict[str, Any]:
    """Publish into a mosquitto the agent subscribes to; time until the relay committed all."""
    tmp.mkdir(parents=True, exist_ok=True)
    write_keypair(tmp / "gw.pem")
    inbox = tmp / "inbox.db"
    store_url = f"sqlite:///{inbox}"
    relay = RelayProcess(tmp, "mqtt-e2e", store_url)
    try:
        asyncio.run(register(store_url, {GATEWAY_ID: tmp / "gw.pem"}))
        with (
            running_mosquitto(tmp / "edge") as edge,
            _agent(agent_config(tmp, relay.url, edge), tmp / "agent.log") as agent,
        ):
            committed = _Committed(inbox)
            try:
                warm = _warm_agent(edge, committed, agent)
                pids = {"agent": agent.pid, "relay": relay.pid, "mosquitto": _broker_pid(edge)}
                before = _cpu(pids)
                started = time.perf_counter()
                publish(edge, messages)
                committed.wait_for(warm + messages)
                seconds = time.perf_counter() - started
                after = _cpu(pids)
            finally:
                committed.close()
    finally:
        relay.stop()
    return _figures(messages, seconds, before, after)


def _warm_agent(edge: Mosquitto, committed: _Committed, agent: subprocess.Popen[bytes]) -> int:
    """Publish probes until the relay holds one; returns the acked seq once they all are in."""
    deadline = time.monotonic() + 60
    n = 0
    while committed.acked() == 0:
        if agent.poll() is not None:
            raise RuntimeError(f"agent exited {agent.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"none of {n} probes reached the relay in 60 s")
        n += 1
        _publish_one(edge, PROBE_TOPIC, _probe(n))
        with contextlib.suppress(RuntimeError):
            _wait_briefly(committed)
    # Probes published while the agent was still subscribing were not delivered; those after
    # were. Settle on what is stored once one more probe is in, so the count starts clean.
    n += 1
    target = committed.acked() + 1
    _publish_one(edge, PROBE_TOPIC, _probe(n))
    committed.wait_for(target)
    return committed.acked()


def _wait_briefly(committed: _Committed) -> None:
    deadline = time.monotonic() + 0.5
    while committed.acked() == 0:
        if time.monotonic() > deadline:
            raise RuntimeError("not yet")
        time.sleep(0.01)


# --- both -----------------------------------------------------------------------------------


def _figures(
    messages: int, seconds: float, before: dict[str, float], after: dict[str, float]
) -> dict[str, Any]:
    cpu = {name: after[name] - before[name] for name in before}
    return {
        "messages": messages,
        "seconds": seconds,
        "rate": messages / seconds,
        "cpu_seconds": cpu,
        "cpu_us_per_message": {name: 1e6 * s / messages for name, s in cpu.items()},
    }


def run(messages: int = 30_000) -> dict[str, Any]:
    """Both cases, the bridge first; their figures and the agent's ratio to the bridge."""
    with tempfile.TemporaryDirectory(prefix="bench-mqtt-e2e-") as tmp:
        bridge = measure_bridge(messages, Path(tmp) / "bridge")
        print(f"  bridge: {bridge['rate']:,.0f} msg/s", flush=True)
        agent = measure_agent(messages, Path(tmp) / "agent")
        print(f"  agent:  {agent['rate']:,.0f} ev/s", flush=True)
    result = {
        "messages": messages,
        "topics": len(TOPICS),
        "cases": {"bridge": bridge, "agent": agent},
        "ratio": agent["rate"] / bridge["rate"],
    }
    print(f"\n{messages:,} QoS 1 messages of 200 bytes on {len(TOPICS)} topics")
    print(f"{'case':<8}{'msg/s':>10}  CPU µs per message")
    for name, case in result["cases"].items():
        split = ", ".join(f"{k} {v:.0f}" for k, v in case["cpu_us_per_message"].items())
        print(f"{name:<8}{case['rate']:>10,.0f}  {split}")
    print(f"agent / bridge: {result['ratio']:.2f}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--messages", type=int, default=30_000)
    args = parser.parse_args()
    run(args.messages)


if __name__ == "__main__":
    main()
