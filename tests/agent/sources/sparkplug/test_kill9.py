"""Kill -9 the agent while an edge node counts: the queue holds exactly what the node made.

The agent runs as ``python -m agent run`` and is the node's primary host. Each kill leaves the
agent's STATE death (its will) on the broker, so the node stores and forwards what it makes
until the restarted agent says it is online again; then the node is born anew and forwards the
rest. However the kills fall (mid-commit included), the production queued must add up to the
node's counter. Size: ``SPB_KILL9_PARTS`` (default 300); ``KILL9_SEED`` repeats a run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from pathlib import Path

import pytest

from tests.agent.sources.mqtt.test_kill9 import Agent, read_queue, wait_until
from tests.agent.sources.sparkplug.edge_node import UINT32, EdgeNode, MetricDef
from tests.fixtures.mosquitto import Mosquitto, mosquitto
from wire.keys import write_keypair

__all__ = ["mosquitto"]

PARTS = int(os.environ.get("SPB_KILL9_PARTS", "300"))
KILLS = 3
PRODUCE_SECONDS = 6.0
STEP_TIMEOUT_SECONDS = 60.0
HOST_ID = "plant-link-kill9"


def write_config(tmp: Path, broker: Mosquitto) -> Path:
    key = tmp / "gw.pem"
    write_keypair(key)
    config = tmp / "agent.toml"
    config.write_text(
        f"""
[gateway]
id = "gw-spb"
signing_key_file = "{key}"
state_dir = "{tmp / "state"}"
[relay]
url = "http://127.0.0.1:9"
[health]
listen = ""
[sparkplug]
group_id = "line1"
host_id = "{HOST_ID}"
[sparkplug.broker]
host = "{broker.host}"
port = {broker.port}
reconnect_min_seconds = 0.05
reconnect_max_seconds = 0.5
[sparkplug.order]
value = "MO/KILL9"
[[sparkplug.metrics]]
name = "good"
node = "press-1"
metric = "GoodParts"
rule = "counter"
event = "production.reported"
"""
    )
    return config


def produced(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        return sum(int(e["data"]["qty"]) for e in read_queue(db))  # type: ignore[index]
    except Exception:
        return 0  # the agent is still creating the schema


@pytest.mark.timeout(300)
def test_kill9_of_the_primary_host_counts_exactly(mosquitto: Mosquitto, tmp_path: Path) -> None:
    seed = int(os.environ.get("KILL9_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"\nSparkplug kill-9 run: {PARTS} parts, {KILLS} kills, seed {seed}")
    db = tmp_path / "state" / "queue.db"
    agent = Agent(write_config(tmp_path, mosquitto), tmp_path / "agent.log")
    node = EdgeNode(
        mosquitto.host,
        mosquitto.port,
        "line1",
        "press-1",
        {"GoodParts": MetricDef(1, UINT32, 0)},
        primary_host=HOST_ID,
    )
    made = 0

    def produce() -> None:
        nonlocal made
        for made in range(1, PARTS + 1):
            node.set("GoodParts", made)
            time.sleep(PRODUCE_SECONDS / PARTS)  # a production rate, not a synchronisation

    agent.start()
    try:
        node.connect()
        wait_until(lambda: node.births >= 1, "the node's first birth", STEP_TIMEOUT_SECONDS)
        producer = threading.Thread(target=produce, name="edge-node")
        producer.start()
        for kill in range(KILLS):
            target = rng.randint(1, PARTS // (KILLS + 1)) * (kill + 1)
            wait_until(
                lambda target=target: produced(db) >= min(target, made) or not agent.alive(),
                f"run {kill + 1} to queue {target} parts",
                STEP_TIMEOUT_SECONDS,
            )
            assert agent.alive(), agent.log.read_text()[-3000:]
            time.sleep(rng.uniform(0.0, 0.05))  # a random point in the commit that follows
            agent.kill()
            print(f"kill {kill + 1}: {produced(db)} parts queued, {made} made")
            agent.start()
        producer.join(timeout=120)
        wait_until(lambda: produced(db) >= PARTS, f"all {PARTS} parts", STEP_TIMEOUT_SECONDS)
        assert agent.stop() == 0, agent.log.read_text()[-3000:]
    finally:
        if agent.alive():
            agent.kill()
        node.disconnect()
    events = read_queue(db)
    total = sum(int(e["data"]["qty"]) for e in events)  # type: ignore[index]
    print(f"made {PARTS}, queued {total} in {len(events)} events")
    assert total == PARTS
    seqs = [int(str(e["seq"])) for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
