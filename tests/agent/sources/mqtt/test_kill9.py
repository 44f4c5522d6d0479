"""Kill -9 the whole agent, again and again, while QoS 1 messages pour in: none lost, none twice.

Messages go to several topics, each with a msg_id and a per-topic counter. The agent process
(``python -m agent run``) is killed with SIGKILL at random moments while it ingests, and
restarted each time. At the end it drains what the broker still holds; the queue file must then
hold every message the broker accepted exactly once, in publish order per topic.
Size: ``KILL9_MESSAGES`` (default 20000); ``KILL9_SEED`` repeats a run's kill moments.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from tests.fixtures.mosquitto import Mosquitto, publish_qos1
from wire.keys import write_keypair

MESSAGES = int(os.environ.get("KILL9_MESSAGES", "20000"))
KILLS = 5
TOPICS = [f"plant/line{i}/produced" for i in range(4)]
CLIENT_ID = "edge-agent-gw-test"  # what the agent uses for gateway "gw-test"
REPO = Path(__file__).resolve().parents[4]
#: Publishing is spread over about this long, so the kills land during live traffic.
PUBLISH_SECONDS = 12.0
STEP_TIMEOUT_SECONDS = 60.0
#: The final drain is over when nothing new is queued for this long.
STALL_SECONDS = 15.0


def write_config(tmp: Path, broker: Mosquitto) -> Path:
    key = tmp / "gw.pem"
    write_keypair(key)
    config = tmp / "agent.toml"
    config.write_text(
        f"""
[gateway]
id = "gw-test"
signing_key_file = "{key}"
state_dir = "{tmp / "state"}"
[relay]
url = "http://127.0.0.1:9"
[health]
listen = ""
[mqtt]
host = "{broker.host}"
port = {broker.port}
[[mqtt.subscriptions]]
topic = "plant/+/produced"
qos = 1
event = "production.reported"
dedupe_key = "/msg_id"
[mqtt.subscriptions.fields]
order = "/order"
qty = "/qty"
"""
    )
    return config


def make_session(broker: Mosquitto) -> None:
    """Create the agent's persistent session and subscription, so nothing published is missed."""
    done = threading.Event()
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=CLIENT_ID, protocol=mqtt.MQTTv5
    )
    client.on_subscribe = lambda *_: done.set()
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    client.loop_start()
    try:
        client.subscribe("plant/+/produced", qos=1)
        assert done.wait(10), "no SUBACK"
    finally:
        client.disconnect()
        client.loop_stop()


class Stream:
    """The published messages, paced to last about PUBLISH_SECONDS; counts what it handed out."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.handed_out = 0

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        counters = [0] * len(TOPICS)
        started = time.monotonic()
        for i in range(self.count):
            t = i % len(TOPICS)
            n = counters[t]
            counters[t] += 1
            msg_id = f"{t}-{n:07d}"
            body = {"msg_id": msg_id, "n": n, "order": f"WH/MO/{msg_id}", "qty": 1}
            self.handed_out = i + 1
            yield TOPICS[t], json.dumps(body).encode()
            if i % 200 == 199:
                ahead = started + PUBLISH_SECONDS * (i + 1) / self.count - time.monotonic()
                if ahead > 0:
                    time.sleep(ahead)  # a rate limit, not a synchronisation


def queued_count(db: Path) -> int:
    """Events in the queue file right now (0 before the agent created it)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the agent is still creating the schema


def wait_until(condition: Callable[[], bool], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.005)


def wait_for_drain(db: Path, agent: Agent) -> None:
    """Wait until every message is queued, or nothing more arrives for a while (then the
    analysis below says what is missing)."""
    last, last_change = -1, time.monotonic()
    while agent.alive():
        count = queued_count(db)
        if count >= MESSAGES:
            return
        if count != last:
            last, last_change = count, time.monotonic()
        elif time.monotonic() - last_change > STALL_SECONDS:
            return
        time.sleep(0.05)


class Agent:
    """The agent as a separate process, restarted at will."""

    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "agent", "run", "--config", str(self.config)],
                cwd=REPO,
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


def read_queue(db: Path) -> list[dict[str, object]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT body FROM events ORDER BY seq").fetchall()
    return [json.loads(body) for (body,) in rows]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_kill9_loses_nothing_and_queues_nothing_twice(mosquitto: Mosquitto, tmp_path: Path) -> None:
    seed = int(os.environ.get("KILL9_SEED", str(random.randrange(1 << 30))))
    rng = random.Random(seed)
    print(f"\nkill-9 run: {MESSAGES} messages, {KILLS} kills, seed {seed}")
    config = write_config(tmp_path, mosquitto)
    db = tmp_path / "state" / "queue.db"
    agent = Agent(config, tmp_path / "agent.log")
    make_session(mosquitto)

    stream = Stream(MESSAGES)
    accepted: list[int] = []
    failure: list[BaseException] = []

    def publish() -> None:
        try:
            accepted.append(
                publish_qos1(mosquitto.host, mosquitto.port, stream, timeout_seconds=600)
            )
        except BaseException as exc:
            failure.append(exc)

    publisher = threading.Thread(target=publish, name="publisher")
    publisher.start()
    try:
        for kill in range(KILLS):
            before = queued_count(db)
            # Kill once this run has queued a random share of the backlog: mid-ingest, just
            # after a commit (whose PUBACKs may not be out yet) with the next one under way.
            target = min(MESSAGES, before + rng.randint(1, max(1, stream.handed_out - before)))
            agent.start()
            wait_until(
                lambda target=target: queued_count(db) >= target or not agent.alive(),
                f"run {kill + 1} to queue {target} events",
                STEP_TIMEOUT_SECONDS,
            )
            assert agent.alive(), agent.log.read_text()[-3000:]
            time.sleep(rng.uniform(0.0, 0.03))  # a random point in the commit that follows
            agent.kill()
            print(f"kill {kill + 1}: {queued_count(db)} events queued (target {target})")
        publisher.join(timeout=600)
        assert not failure, failure
        assert accepted == [MESSAGES], "the broker did not acknowledge every publish"

        agent.start()
        wait_for_drain(db, agent)
        assert agent.stop() == 0, agent.log.read_text()[-3000:]
    finally:
        if agent.alive():
            agent.kill()
        publisher.join(timeout=60)

    events = read_queue(db)
    seen: dict[str, int] = {}
    last_n: dict[str, int] = {}
    duplicated = out_of_order = 0
    for event in events:
        data = event["data"]
        assert isinstance(data, dict)
        msg_id = str(data["order"]).removeprefix("WH/MO/")
        topic = str(event["source"]).removeprefix("mqtt:")
        topic_index, n = (int(part) for part in msg_id.split("-"))
        assert TOPICS[topic_index] == topic
        seen[msg_id] = seen.get(msg_id, 0) + 1
        if seen[msg_id] > 1:
            duplicated += 1
            continue
        if n != last_n.get(topic, -1) + 1:
            out_of_order += 1
        last_n[topic] = n
    expected = {f"{i % len(TOPICS)}-{i // len(TOPICS):07d}" for i in range(MESSAGES)}
    lost = len(expected - seen.keys())
    unexpected = len(seen.keys() - expected)
    print(
        f"published {MESSAGES}, queued {len(events)}: lost {lost}, duplicated {duplicated}, "
        f"out of order {out_of_order}, unexpected {unexpected}"
    )
    assert (lost, duplicated, out_of_order, unexpected) == (0, 0, 0, 0)
    assert len(events) == MESSAGES
    seqs = [int(str(e["seq"])) for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
