"""Fixtures for the MQTT source: a real mosquitto, a real QueueStore, and ways to wait on them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.mqtt.config import MqttConfig, MqttSubscription
from agent.sources.mqtt.source import MqttSource
from tests.fixtures.mosquitto import Mosquitto, mosquitto, publish_qos1

__all__ = ["mosquitto"]

WAIT_SECONDS = 20.0

PRODUCED = MqttSubscription(
    topic="plant/+/produced",
    qos=1,
    event="production.reported",
    fields={"order": "/order", "qty": "/qty"},
    dedupe_key="/msg_id",
)


def mqtt_config(broker: Mosquitto, *subscriptions: MqttSubscription, **options: Any) -> MqttConfig:
    """Settings for the source against ``broker``; fast reconnects for tests."""
    values: dict[str, Any] = {
        "host": broker.host,
        "port": broker.port,
        "reconnect_min_seconds": 0.05,
        "reconnect_max_seconds": 0.5,
        "subscriptions": subscriptions or (PRODUCED,),
    }
    values.update(options)
    return MqttConfig(**values)


async def wait_until(
    condition: Callable[[], bool], what: str, seconds: float = WAIT_SECONDS
) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {seconds} s waiting for {what}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def running(source: MqttSource, *, connected: bool = True) -> AsyncIterator[MqttSource]:
    """Run ``source`` for the block (waiting until it is connected); stop it after."""
    task = asyncio.create_task(source.run())
    try:
        if connected:
            await wait_until(
                lambda: source.stats().connected or task.done(), "the source to connect"
            )
            if task.done():
                task.result()
        yield source
    finally:
        task.cancel()
        results = await asyncio.gather(task, return_exceptions=True)
        if results and isinstance(results[0], Exception):
            raise results[0]


async def publish(broker: Mosquitto, messages: Iterable[tuple[str, bytes]]) -> int:
    """Publish at QoS 1 from a worker thread; return how many the broker acknowledged."""
    items = list(messages)
    acked = await asyncio.to_thread(publish_qos1, broker.host, broker.port, items)
    assert acked == len(items)
    return acked


def produced(
    topic: str, msg_id: object, qty: object = 1, order: str = "WH/MO/00001", **extra: Any
) -> tuple[str, bytes]:
    """A production report message."""
    body: dict[str, Any] = {"order": order, "qty": qty, "msg_id": msg_id, **extra}
    return topic, json.dumps(body).encode()


async def queued_events(queue: QueueStore) -> list[dict[str, Any]]:
    """Every event still in the queue, decoded, in seq order."""
    stored = await queue.read_batch(0, 1_000_000, 1 << 40)
    return [json.loads(ev.body) for ev in stored]


class GatedQueue(QueueStore):
    """The real queue, with a gate in front of ``enqueue`` and a record of each call's size."""

    gate: asyncio.Event
    calls: list[int]
    fail_next: list[BaseException]

    async def enqueue(
        self, events: Any, state: Mapping[str, str] | None = None, **options: Any
    ) -> Any:
        if events:
            self.calls.append(len(events))
            await self.gate.wait()
            if self.fail_next:
                raise self.fail_next.pop(0)
        return await super().enqueue(events, state, **options)


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[QueueStore]:
    store = await QueueStore.open(tmp_path / "queue.db", "gw-test", QueueConfig())
    try:
        yield store
    finally:
        await store.close()


@pytest.fixture
async def gated_queue(tmp_path: Path) -> AsyncIterator[GatedQueue]:
    store = await GatedQueue.open(tmp_path / "queue.db", "gw-test", QueueConfig())
    assert isinstance(store, GatedQueue)
    store.gate = asyncio.Event()
    store.gate.set()
    store.calls = []
    store.fail_next = []
    try:
        yield store
    finally:
        store.gate.set()
        await store.close()
