"""Messages that cannot be stored become rejects and never stop MQTT ingest (real mosquitto).

A lone UTF-16 surrogate (``"\\ud800"`` in the JSON text) decodes to a Python string that has no
UTF-8 form, so it can be neither written to SQLite nor sent to the relay: in a dedupe key or in
any field it must be a counted, kept, acknowledged reject, while every valid message around it is
queued exactly once and the source keeps running.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter

from agent.queue.store import QueueStore
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import (
    WAIT_SECONDS,
    mqtt_config,
    produced,
    publish,
    queued_events,
    wait_until,
)
from tests.fixtures.mosquitto import Mosquitto

VALID = int(os.environ.get("MQTT_POISON_VALID", "1000"))
TOPIC = "plant/l1/produced"

POISON = [
    b'{"msg_id": "\\ud800", "order": "MO", "qty": 1}',
    b'{"msg_id": "p-2", "order": "MO\\udc00", "qty": 1}',
    b'{"msg_id": ["\\udbff"], "order": "MO", "qty": 1}',
    b'{"msg_id": "p-4", "order": "MO", "qty": 1, "lot": "\\ud83d"}',
]


async def test_surrogate_payloads_are_rejects_and_every_valid_message_is_queued_once(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    sub = (
        mqtt_config(mosquitto)
        .subscriptions[0]
        .model_copy(update={"fields": {"order": "/order", "qty": "/qty", "lot": "/lot"}})
    )
    source = MqttSource(mqtt_config(mosquitto, sub), queue, "edge-poison")
    valid = [produced(TOPIC, f"v-{i}", lot=f"v-{i}") for i in range(VALID)]
    messages = list(valid)
    for n, payload in enumerate(POISON):  # spread over the stream, so they share commits
        messages.insert((n + 1) * len(messages) // (len(POISON) + 1), (TOPIC, payload))
    task = asyncio.create_task(source.run())
    try:
        await wait_until(lambda: source.stats().connected or task.done(), "the source to connect")
        await publish(mosquitto, messages)
        settled = len(messages)
        await wait_until(
            lambda: task.done() or source.stats().queued + source.stats().rejected >= settled,
            f"{settled} messages queued or rejected",
            seconds=WAIT_SECONDS * 3,
        )
        assert not task.done(), f"the source stopped: {task.exception()!r}"
        stats = source.stats()
        assert (stats.received, stats.queued, stats.rejected) == (settled, VALID, len(POISON))
        assert stats.reconnects == 0, "the source reconnected: the poison was delivered again"
        assert stats.last_reject is not None
        stats.last_reject.encode("utf-8")  # shown on the health page: must be encodable
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    lots = Counter(ev["data"]["lot"] for ev in await queued_events(queue))
    assert lots == Counter(json.loads(p)["lot"] for _, p in valid)  # each exactly once
    assert queue.stats().rejected == len(POISON)
    rejects = await queue.recent_rejects(10)
    assert len(rejects) == len(POISON)
    reasons = sorted(reject.reason for reject in rejects)
    for reject in rejects:
        assert reject.where == TOPIC
        reject.reason.encode("utf-8")
    for says in ("dedupe_key 'mqtt:plant/+/produced:\\ud800' cannot be stored", "/lot:", "/order:"):
        assert sum(says in reason for reason in reasons) == 1, (says, reasons)
    assert all(reason.startswith(f"topic {TOPIC}: ") for reason in reasons), reasons
    # Acknowledged: a new session of the same client gets nothing again.
    again = MqttSource(mqtt_config(mosquitto, sub), queue, "edge-poison")
    task = asyncio.create_task(again.run())
    try:
        await wait_until(lambda: again.stats().connected or task.done(), "the source to connect")
        await publish(mosquitto, [produced(TOPIC, "last")])
        await wait_until(lambda: again.stats().received >= 1, "the marker message")
        assert again.stats().received == 1
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
