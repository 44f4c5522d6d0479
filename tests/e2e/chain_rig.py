"""The whole chain as separate processes, for the chaos test: the agent with both sources, relay
replicas that post into the Odoo sandbox, and the two producers whose truth the test keeps.

The MQTT feed publishes ``material.consumed`` messages at QoS 1 from a thread and keeps those
the broker acknowledged; the counter line is a good-parts counter on an in-process OPC UA
server that grows under the current order and changes order only at rest, once the agent has
counted every part of the order before (as a real line changes over between orders). The
stores behind the relays are read directly, whether a relay is up or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from prometheus_client.parser import text_string_to_metric_families

from agent.queue.model import QueueStats
from agent.queue.stats_reader import read_queue_stats
from cloud_relay.config import StoreConfig
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.posting.factory import open_posting_store
from tests.cloud_relay.support import free_port
from tests.e2e.odoo_rig import Progress, SandboxCredentials
from tests.e2e.relay_fleet import (
    ADMIN_TOKEN,
    WAIT_SECONDS,
    RelayProcess,
    kill9_process,
    spawn_run,
    stop_process,
    tail,
)
from tests.fixtures.opcua_server import NAMESPACE, OpcuaTestServer
from wire.events import format_timestamp

POLL_SECONDS = 0.05
#: The agent's name for the good-parts counter rule; its persisted value is the state below.
COUNTER_RULE = "good-parts"
COUNTER_STATE_KEY = f"opcua:counter:{COUNTER_RULE}:nsu={NAMESPACE};s=Line1.GoodParts"
#: The component the MQTT feed reports (the production line's BOLT).
COMPONENT = "BOLT"


async def wait_until(
    condition: Callable[[], Awaitable[bool]], what: str, within_seconds: float = WAIT_SECONDS
) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``within_seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_seconds
    while not await condition():
        assert loop.time() < deadline, f"timed out after {within_seconds:.0f} s waiting for {what}"
        await asyncio.sleep(POLL_SECONDS)


# -- the relay ----------------------------------------------------------------------------------


class ChainRelay(RelayProcess):
    """A relay replica whose writer posts into the sandbox, on a SQLite file or PostgreSQL.

    ``writer`` holds ``[writer]`` options (TOML scalars). Calls to Odoo are retried at once:
    the sandbox on loopback has no reason to be slow twice.
    """

    def __init__(
        self,
        name: str,
        directory: Path,
        store_url: str,
        port: int,
        public_url: str,
        sandbox: SandboxCredentials,
        writer: dict[str, Any],
    ) -> None:
        super().__init__(name, directory, store_url, port, public_url=public_url)
        store = f"url = {json.dumps(store_url)}\n"
        if store_url.startswith("sqlite:"):
            # A kill -9 is a process crash: WAL with synchronous=NORMAL keeps every commit.
            store += 'durability = "process"\n'
        else:
            store += "pool_size = 4\n"
        options = "".join(f"{key} = {json.dumps(value)}\n" for key, value in writer.items())
        self.config.write_text(
            f'[server]\nlisten = "127.0.0.1:{port}"\npublic_url = {json.dumps(public_url)}\n'
            f"[store]\n{store}"
            f'[admin]\ntoken = "{ADMIN_TOKEN}"\n'
            '[log]\nformat = "json"\n'
            f"[odoo]\nurl = {json.dumps(sandbox.url)}\n"
            f"database = {json.dumps(sandbox.database)}\n"
            f"login = {json.dumps(sandbox.login)}\n"
            f"api_key = {json.dumps(sandbox.api_key)}\n"
            "retry_backoff_seconds = 0.01\n"
            f"[writer]\n{options}"
        )

    async def writer_state(self) -> str | None:
        """What this replica's writer is doing (``posting``, ``standby``…); None when down."""
        if not self.running:
            return None
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                # Behind a proxy (public_url) /metrics asks for a token.
                response = await client.get(
                    self.base_url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
                )
        except httpx.TransportError:
            return None
        for family in text_string_to_metric_families(response.text):
            if family.name == "cloud_relay_writer_state":
                for sample in family.samples:
                    if sample.value == 1:
                        return sample.labels["state"]
        return None


# -- the agent ----------------------------------------------------------------------------------


class ChainAgent:
    """``python -m agent run`` with the MQTT and OPC UA sources, a queue of ``queue_max_bytes``
    (overflow ``reject``: sources pause) and a health page; killed and restarted at will."""

    def __init__(
        self,
        directory: Path,
        gateway_id: str,
        key: Path,
        relay_url: str,
        broker: tuple[str, int],
        opcua_endpoint: str,
        queue_max_bytes: int,
    ) -> None:
        self._directory = directory
        self.health_url = f"http://127.0.0.1:{free_port()}/healthz"
        state = directory / "agent-state"
        self.queue_path = state / "queue.db"
        self.config = directory / "agent.toml"
        host, port = broker
        self.config.write_text(
            f"""[gateway]
id = "{gateway_id}"
signing_key_file = "{key}"
state_dir = "{state}"

[relay]
url = "{relay_url}"
batch_max_age_ms = 50
timeout_seconds = 10
backoff_initial_seconds = 0.05
backoff_max_seconds = 0.5

[queue]
durability = "process"
max_bytes = {queue_max_bytes}

[mqtt]
host = "{host}"
port = {port}
keepalive_seconds = 5
reconnect_min_seconds = 0.1
reconnect_max_seconds = 1.0

[[mqtt.subscriptions]]
topic = "plant/line1/+/consumed"
qos = 1
event = "material.consumed"
occurred_at = "/ts"
dedupe_key = "/msg_id"
[mqtt.subscriptions.fields]
order = "/order"
product = "/product"
qty = "/qty"

[opcua]
endpoint = "{opcua_endpoint}"
publishing_interval_ms = 50
reconnect_min_seconds = 0.1
reconnect_max_seconds = 1.0
session_timeout_seconds = 10

[opcua.order.node]
namespace_uri = "{NAMESPACE}"
identifier = "s=Line1.Order"

[[opcua.nodes]]
name = "{COUNTER_RULE}"
namespace_uri = "{NAMESPACE}"
identifier = "s=Line1.GoodParts"
rule = "counter"
event = "production.reported"

[health]
listen = "{self.health_url.removeprefix("http://").removesuffix("/healthz")}"

[log]
format = "json"
"""
        )
        self.logs: list[Path] = []
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Spawn the agent (one log file per start)."""
        assert not self.running, "the agent is already running"
        log = self._directory / f"agent-{len(self.logs)}.log"
        self.logs.append(log)
        self._process = await spawn_run("agent", self.config, log)

    async def kill9(self) -> None:
        """SIGKILL the agent and reap it."""
        await kill9_process(self._process, "the agent")

    async def stop(self) -> int:
        """SIGTERM; returns the exit code."""
        return await stop_process(self._process)

    def alive(self) -> None:
        """Fail the test when the agent exited on its own."""
        assert self.running, f"the agent exited:\n{tail(self.logs[-1])}"

    async def components(self) -> dict[str, Any] | None:
        """The components' figures from ``/healthz``; None while the page does not answer."""
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self.health_url)
        except httpx.TransportError:
            return None
        if response.status_code not in (200, 503):  # 503: red, a full queue for one
            return None
        components: dict[str, Any] = response.json()["components"]
        return components

    async def queue_stats(self) -> QueueStats:
        """The queue as read from its file (the agent may be down)."""
        return await asyncio.to_thread(read_queue_stats, self.queue_path)

    async def counted(self) -> int | None:
        """The good-parts counter value the agent has durably counted (None before its first
        reading)."""
        value = await asyncio.to_thread(self._read_state, COUNTER_STATE_KEY)
        return int(value) if value is not None and value.isdigit() else None

    def _read_state(self, key: str) -> str | None:
        if not self.queue_path.exists():
            return None
        uri = f"file:{self.queue_path}?mode=ro"
        try:
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
                row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError:
            return None  # the agent is still creating the schema
        return None if row is None else str(row[0])


# -- the MQTT feed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Consumption:
    """One published ``material.consumed`` message; ``at`` (its ``ts``) is unique to it and so
    names it in what the relay stores."""

    order: str
    n: int
    """Its place among the messages of its order, from 0."""
    at: datetime
    qty: int


class MqttFeed:
    """Publishes consumption messages at QoS 1 from a thread, one topic per order, at a steady
    rate plus bursts on demand; :attr:`acked` holds what the broker acknowledged (PUBACK)."""

    def __init__(
        self, host: str, port: int, orders: list[str], rng: random.Random, per_second: float
    ) -> None:
        self._address = (host, port)
        self._orders = orders
        self._rng = rng
        self._interval = 1.0 / per_second
        self._next_n = [0] * len(orders)
        self._last_at = datetime.now(UTC)
        self._burst = 0
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="mqtt-feed", daemon=True)
        self._failure: BaseException | None = None
        self.published = 0
        self.acked: list[Consumption] = []

    def start(self) -> None:
        self._thread.start()

    def burst(self, count: int) -> None:
        """Publish ``count`` more messages as fast as the broker takes them."""
        with self._lock:
            self._burst += count

    @property
    def bursting(self) -> int:
        """Burst messages not yet published."""
        return self._burst

    async def stop(self) -> None:
        """Publish what is left of a burst, wait for every PUBACK, disconnect."""
        self._stopping.set()
        await asyncio.to_thread(self._thread.join, 2 * WAIT_SECONDS)
        assert not self._thread.is_alive(), "the MQTT feed did not stop"
        if self._failure is not None:
            raise AssertionError(f"the MQTT feed failed: {self._failure!r}") from self._failure
        assert len(self.acked) == self.published, (
            f"the broker acknowledged {len(self.acked)} of {self.published} publishes"
        )

    async def close(self) -> None:
        """Stop publishing, whatever is left unacknowledged (for a test that failed)."""
        self._stopping.set()
        with self._lock:
            self._burst = 0
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 2 * WAIT_SECONDS)

    def alive(self) -> None:
        """Fail the test when the publishing thread died."""
        if self._failure is not None:
            raise AssertionError(f"the MQTT feed failed: {self._failure!r}") from self._failure

    def _message(self) -> tuple[str, bytes, Consumption]:
        index = self._rng.randrange(len(self._orders))
        n = self._next_n[index]
        self._next_n[index] += 1
        # Strictly increasing, so that the time stamp names the message.
        self._last_at = max(datetime.now(UTC), self._last_at + timedelta(microseconds=1))
        sent = Consumption(self._orders[index], n, self._last_at, self._rng.randint(1, 3))
        payload = {
            "msg_id": f"{index}-{n}",
            "ts": format_timestamp(sent.at),
            "order": sent.order,
            "product": COMPONENT,
            "qty": sent.qty,
        }
        return f"plant/line1/o{index}/consumed", json.dumps(payload).encode(), sent

    def _run(self) -> None:
        try:
            self._publish()
        except BaseException as exc:
            self._failure = exc

    def _publish(self) -> None:
        in_flight: dict[int, Consumption] = {}

        def on_publish(*args: Any) -> None:
            self.acked.append(in_flight.pop(args[2]))

        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="chain-feed", protocol=mqtt.MQTTv311
        )
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        client.on_publish = on_publish
        client.connect(*self._address, keepalive=60)
        try:
            self._pump(client, lambda: client.is_connected(), WAIT_SECONDS)
            next_at = time.monotonic()
            while True:
                stopping = self._stopping.is_set()
                due = not stopping and time.monotonic() >= next_at
                if due:
                    next_at += self._interval
                elif not self._take_burst():
                    if stopping:
                        break
                    self._pump(client, lambda: True, WAIT_SECONDS, timeout=0.002)
                    continue
                topic, payload, sent = self._message()
                in_flight[client.publish(topic, payload, qos=1).mid] = sent
                self.published += 1
                self._pump(client, lambda: True, WAIT_SECONDS, timeout=0)
            self._pump(client, lambda: not in_flight, 2 * WAIT_SECONDS)
        finally:
            client.disconnect()

    def _take_burst(self) -> bool:
        with self._lock:
            if self._burst <= 0:
                return False
            self._burst -= 1
            return True

    @staticmethod
    def _pump(
        client: mqtt.Client, until: Callable[[], bool], within: float, timeout: float = 0.05
    ) -> None:
        """Run paho's network loop (at least once) until ``until()``."""
        deadline = time.monotonic() + within
        while True:
            rc = client.loop(timeout=timeout)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                raise ConnectionError(f"the feed lost the broker: {mqtt.error_string(rc)}")
            if until():
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the broker stopped acknowledging the feed's publishes")


# -- the counter line ---------------------------------------------------------------------------


class CounterLine:
    """A line PLC on the in-process OPC UA server: a good-parts counter that grows under the
    current order; :attr:`made` is the parts made per order, the truth Odoo must match.

    Orders change only at rest, once ``counted()`` (the agent's durable counter) has reached
    the counter: parts made before a change then belong to the order before it whatever the
    agent's state (down, paused by a full queue, restarting). When that takes too long the line
    goes on under the same order and tries again later.
    """

    #: Seconds between two increments, and the parts one increment adds.
    TICK_SECONDS = 0.1
    STEPS = (1, 1, 2, 3)

    def __init__(
        self,
        server: OpcuaTestServer,
        orders: list[str],
        rng: random.Random,
        counted: Callable[[], Awaitable[int | None]],
        changeover_seconds: float,
    ) -> None:
        self._server = server
        self._orders = orders
        self._rng = rng
        self._counted = counted
        self._changeover_seconds = changeover_seconds
        self.order = orders[0]
        self.value = 0
        self.made: Counter[str] = Counter()
        self.changeovers = 0
        self.changeovers_put_off = 0

    async def set_up(self) -> None:
        """The counter at 0 under the first order, before the agent first connects."""
        await self._server.write("good", 0)
        await self._server.write("order", self.order)

    async def run(self, stop: asyncio.Event) -> None:
        """Make parts until ``stop``, changing order every ``changeover_seconds``."""
        loop = asyncio.get_running_loop()
        changeover_at = loop.time() + self._changeover_seconds
        while not stop.is_set():
            if loop.time() >= changeover_at:
                await self._change_over(stop)
                changeover_at = loop.time() + self._changeover_seconds
            step = self._rng.choice(self.STEPS)
            await self._server.write("good", self.value + step)
            self.value += step
            self.made[self.order] += step
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.TICK_SECONDS)  # the line's pace

    async def _change_over(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._changeover_seconds
        while await self._counted() != self.value:
            if stop.is_set() or loop.time() > deadline:
                self.changeovers_put_off += 1
                return
            await asyncio.sleep(POLL_SECONDS)
        self.order = self._orders[(self._orders.index(self.order) + 1) % len(self._orders)]
        await self._server.write("order", self.order)
        self.changeovers += 1


# -- the stores behind the relays ---------------------------------------------------------------


class ChainStore:
    """The inbox and posting store the relays share (SQLite file or PostgreSQL database),
    opened from the test process."""

    def __init__(self, url: str, gateway_id: str) -> None:
        config = StoreConfig(url=url, pool_size=2, durability="process")
        self.gateway_id = gateway_id
        self.inbox = open_inbox(config)
        self.postings = open_posting_store(config, pool_size=2)

    async def open(self) -> None:
        await self.inbox.open()
        await self.postings.open()

    async def close(self) -> None:
        await self.postings.close()
        await self.inbox.close()

    async def progress(self) -> Progress:
        # In this order: the cursor moves with the postings it adds, so reading the ack point
        # first never shows a cursor behind events already routed.
        acked = await self.inbox.acked_seq(self.gateway_id)
        routed = await self.postings.route_cursor(self.gateway_id)
        return Progress(acked, routed, await self.postings.counts())
