"""The agent on a real, small file system that fills up while the relay is away, then heals.

The agent's state lives on a 4 MiB tmpfs (a queue with a 512 KiB reserve). A real mosquitto
floods it with QoS 1 reports while the relay is down, until the disk is full and the MQTT source
pauses (``queue-stats`` says ``full: true``). The agent is killed with SIGKILL while full and
started again, then the relay (a real ``cloud_relay run`` process) comes up: as the relay
acknowledges, the queue must give its space back, ingest must resume without flapping, and in
the end the relay holds every message the broker accepted exactly once.

Size: ``DISK_FULL_MESSAGES`` (default 20,000: several times what the disk holds, so that the
queue fills it more than once and its dedupe keys take a good share of it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cloud_relay.support import free_port
from tests.e2e.relay_fleet import RelayProcess, run_module, spawn_run, stop_process, tail
from tests.fixtures.mosquitto import Mosquitto, mosquitto, publish_qos1  # noqa: F401  (fixture)
from wire.keys import write_keypair

MESSAGES = int(os.environ.get("DISK_FULL_MESSAGES", "20000"))
GATEWAY_ID = "gw-disk"
TOPIC = "plant/line1/produced"
DISK = "4m"
RESERVE_BYTES = 512 * 1024
WAIT_SECONDS = 120.0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB tmpfs; skipped (saying why) where this process may not mount one."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a {DISK} tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


class Agent:
    """``python -m agent run`` with the MQTT source, its state on the small disk."""

    def __init__(self, directory: Path, state: Path, relay_url: str, broker: Mosquitto) -> None:
        key = directory / "gateway.pem"
        write_keypair(key)
        self.public_key = key.with_name(key.name + ".pub")
        self.health_url = f"http://127.0.0.1:{free_port()}/healthz"
        self.config = directory / "agent.toml"
        self.config.write_text(
            f'[gateway]\nid = "{GATEWAY_ID}"\nsigning_key_file = "{key}"\nstate_dir = "{state}"\n'
            f'[relay]\nurl = "{relay_url}"\nbatch_max_age_ms = 20\ntimeout_seconds = 10\n'
            "backoff_initial_seconds = 0.05\nbackoff_max_seconds = 0.5\n"
            f"[queue]\ndisk_reserve_bytes = {RESERVE_BYTES}\nfull_probe_interval_seconds = 0.2\n"
            f'[mqtt]\nhost = "{broker.host}"\nport = {broker.port}\nkeepalive_seconds = 5\n'
            "reconnect_min_seconds = 0.1\nreconnect_max_seconds = 1.0\n"
            f'[[mqtt.subscriptions]]\ntopic = "{TOPIC}"\nevent = "production.reported"\n'
            'dedupe_key = "/msg_id"\n'
            '[mqtt.subscriptions.fields]\norder = "/order"\nqty = "/qty"\nlot = "/lot"\n'
            f'[health]\nlisten = "{self.health_url[7:].removesuffix("/healthz")}"\n'
            '[log]\nformat = "json"\n'
        )
        self._directory = directory
        self.logs: list[Path] = []
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.logs.append(self._directory / f"agent-{len(self.logs)}.log")
        self._process = await spawn_run("agent", self.config, self.logs[-1])

    def alive(self) -> None:
        assert self._process is not None and self._process.returncode is None, (
            f"the agent exited:\n{tail(self.logs[-1])}"
        )

    async def kill9(self) -> None:
        assert self._process is not None
        self._process.kill()
        await self._process.wait()

    async def stop(self) -> int:
        return await stop_process(self._process)

    async def components(self) -> dict[str, Any] | None:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self.health_url)
        except httpx.TransportError:
            return None
        components: dict[str, Any] = response.json().get("components", {})
        return components

    async def queue_stats(self) -> dict[str, Any]:
        out = await run_module("agent", "queue-stats", "--json", "--config", str(self.config))
        stats: dict[str, Any] = json.loads(out)
        return stats


async def wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, alive: Callable[[], None]
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while not await condition():
        alive()
        assert loop.time() < deadline, f"timed out after {WAIT_SECONDS:.0f} s waiting until {what}"
        await asyncio.sleep(0.05)


def stored_lots(inbox: Path) -> Counter[str]:
    """The ``lot`` of every event the relay stored for the gateway (one per MQTT message)."""
    if not inbox.exists():
        return Counter()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{inbox}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT body FROM events WHERE gateway_id = ?", (GATEWAY_ID,))
            return Counter(json.loads(body)["data"]["lot"] for (body,) in rows)
    except sqlite3.OperationalError:  # the relay is still creating its tables: look again
        return Counter()


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_full_disk_heals_as_the_relay_acknowledges_across_a_kill_9(
    tmp_path: Path,
    small_disk: Path,
    mosquitto: Mosquitto,  # noqa: F811  (fixture)
) -> None:
    relay_port = free_port()
    inbox = tmp_path / "inbox.db"
    relay = RelayProcess("a", tmp_path, f"sqlite:///{inbox}", relay_port)
    agent = Agent(tmp_path, small_disk / "state", relay.base_url, mosquitto)
    await relay.add_gateway(GATEWAY_ID, agent.public_key)
    await agent.start()
    try:
        await wait_for(
            lambda: _connected(agent), "the agent's MQTT source is connected", agent.alive
        )
        payloads = [
            (
                TOPIC,
                json.dumps(
                    {"msg_id": f"m-{i}", "order": "WH/MO/00001", "qty": 1, "lot": f"L-{i:06d}"}
                ).encode(),
            )
            for i in range(MESSAGES)
        ]
        publisher = asyncio.create_task(
            asyncio.to_thread(
                publish_qos1, mosquitto.host, mosquitto.port, payloads, timeout_seconds=300.0
            )
        )

        async def paused_full() -> bool:
            parts = await agent.components()
            return bool(parts and parts["queue"]["full"] and parts["mqtt"]["paused"])

        await wait_for(paused_full, "the disk is full and the MQTT source paused", agent.alive)
        assert (await agent.queue_stats())["full"] is True
        await agent.kill9()
        assert (await agent.queue_stats())["full"] is True  # read from the file, agent down
        await agent.start()
        assert await publisher == MESSAGES  # the broker holds what the agent could not take
        await relay.start()

        async def all_stored() -> bool:
            relay_alive = relay.running
            assert relay_alive, f"the relay exited:\n{tail(relay.logs[-1])}"
            return sum(stored_lots(inbox).values()) >= MESSAGES

        await wait_for(all_stored, f"the relay stored all {MESSAGES} messages", agent.alive)
        await wait_for(
            lambda: _drained(agent), "the agent's queue is empty and not full", agent.alive
        )
        stats = await agent.queue_stats()
        assert stats["full"] is False, stats
    finally:
        await agent.stop()
        await relay.stop()
    lots = stored_lots(inbox)
    expected = {f"L-{i:06d}" for i in range(MESSAGES)}
    lost = len(expected - set(lots))
    duplicated = sum(n - 1 for n in lots.values())
    assert (lost, duplicated) == (0, 0), f"lost {lost}, duplicated {duplicated}"
    log_text = "".join(path.read_text() for path in agent.logs)
    resumes = log_text.count("takes writes again")
    assert resumes <= MESSAGES // 1000, f"ingest paused and resumed {resumes} times: flapping"


async def _connected(agent: Agent) -> bool:
    parts = await agent.components()
    return bool(parts and parts.get("mqtt", {}).get("connected"))


async def _drained(agent: Agent) -> bool:
    parts = await agent.components()
    return bool(parts and parts["queue"]["pending"] == 0 and not parts["queue"]["full"])
