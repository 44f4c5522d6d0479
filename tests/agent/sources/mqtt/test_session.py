"""The MQTT source's session: persistent across agent and broker restarts, re-subscribed."""

from __future__ import annotations

import asyncio

import pytest

from agent.queue.store import QueueStore
from agent.sources.mqtt.config import MqttSubscription
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import (
    PRODUCED,
    mqtt_config,
    produced,
    publish,
    queued_events,
    running,
    wait_until,
)
from tests.fixtures.mosquitto import Mosquitto


def _orders(events: list[dict[str, object]]) -> list[str]:
    out = []
    for event in events:
        data = event["data"]
        assert isinstance(data, dict)
        out.append(str(data["order"]))
    return out


def _batch(start: int, stop: int, topic: str = "plant/l1/produced") -> list[tuple[str, bytes]]:
    return [produced(topic, f"m{i}", order=f"WH/MO/{i:05d}") for i in range(start, stop)]


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
async def test_messages_published_while_the_agent_is_away_arrive_after_restart(
    mosquitto: Mosquitto, queue: QueueStore, protocol: str
) -> None:
    config = mqtt_config(mosquitto, protocol=protocol)
    async with running(MqttSource(config, queue, "edge-test")):
        pass  # the session and its subscription now exist at the broker
    await publish(mosquitto, _batch(0, 50))
    source = MqttSource(config, queue, "edge-test")
    async with running(source):
        await wait_until(lambda: source.stats().queued == 50, "the backlog")
    assert _orders(await queued_events(queue)) == [f"WH/MO/{i:05d}" for i in range(50)]


async def test_the_source_reconnects_after_the_broker_restarts(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    source = MqttSource(mqtt_config(mosquitto), queue, "edge-test")
    async with running(source):
        await publish(mosquitto, _batch(0, 20))
        await wait_until(lambda: source.stats().queued == 20, "the first batch")
        await asyncio.to_thread(mosquitto.stop)
        await wait_until(lambda: not source.stats().connected, "the source to notice")
        await asyncio.to_thread(mosquitto.start)  # same port, session restored from disk
        await wait_until(lambda: source.stats().connected, "the source to reconnect")
        await publish(mosquitto, _batch(20, 40))
        await wait_until(lambda: source.stats().queued == 40, "the second batch")
        stats = source.stats()
    assert stats.reconnects >= 1
    assert stats.last_error in {
        "disconnected: connection lost",
        f"cannot connect to {mosquitto.host}:{mosquitto.port}: [Errno 111] Connection refused",
    }
    assert _orders(await queued_events(queue)) == [f"WH/MO/{i:05d}" for i in range(40)]


async def test_the_session_and_its_queued_messages_survive_a_broker_restart(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    config = mqtt_config(mosquitto)
    async with running(MqttSource(config, queue, "edge-test")):
        pass
    await publish(mosquitto, _batch(0, 30))
    await asyncio.to_thread(mosquitto.restart)
    source = MqttSource(config, queue, "edge-test")
    async with running(source):
        await wait_until(lambda: source.stats().queued == 30, "the messages kept by the broker")
    assert _orders(await queued_events(queue)) == [f"WH/MO/{i:05d}" for i in range(30)]


async def test_subscriptions_are_made_again_when_the_broker_lost_the_session(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    source = MqttSource(mqtt_config(mosquitto), queue, "edge-test")
    async with running(source):
        await asyncio.to_thread(mosquitto.kill)  # nothing saved: the session is gone
        await wait_until(lambda: not source.stats().connected, "the source to notice")
        await asyncio.to_thread(mosquitto.start)
        await wait_until(lambda: source.stats().connected, "the source to reconnect")
        await publish(mosquitto, _batch(0, 5))
        await wait_until(lambda: source.stats().queued == 5, "messages on the new session")


async def test_filters_dropped_from_the_configuration_are_unsubscribed(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    old = MqttSubscription(
        topic="legacy/+/produced",
        event="production.reported",
        fields={"order": "/order", "qty": "/qty"},
    )
    async with running(MqttSource(mqtt_config(mosquitto, PRODUCED, old), queue, "edge-test")):
        pass
    source = MqttSource(mqtt_config(mosquitto, PRODUCED), queue, "edge-test")
    async with running(source):
        # In order from one publisher: were the old filter still subscribed, its message
        # would arrive before the one on the kept filter.
        await publish(
            mosquitto,
            [produced("legacy/l1/produced", "old"), produced("plant/l1/produced", "new")],
        )
        await wait_until(lambda: source.stats().queued == 1, "the message on the kept filter")
        stats = source.stats()
    assert (stats.received, stats.rejected) == (1, 0)


async def test_qos0_subscriptions_need_no_acknowledgement(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    sub = PRODUCED.model_copy(update={"qos": 0})
    source = MqttSource(mqtt_config(mosquitto, sub), queue, "edge-test")
    async with running(source):
        await publish(mosquitto, _batch(0, 10))
        await wait_until(lambda: source.stats().queued == 10, "ten events")
        await wait_until(lambda: source.stats().unacked == 0, "nothing held")
