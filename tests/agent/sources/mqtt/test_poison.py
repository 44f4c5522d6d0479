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
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.errors import RejectedError
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import (
    WAIT_SECONDS,
    mqtt_config,
    produced,
    publish,
    queued_events,
    running,
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


class RefusingQueue(QueueStore):
    """The real queue, refusing (as a failed commit would) the first call of several events."""

    refused = 0
    calls: list[int]

    async def enqueue(
        self, events: Any, state: Mapping[str, str] | None = None, **options: Any
    ) -> Any:
        if len(events) > 1 and not self.refused:
            self.refused = len(events)
            raise RejectedError("cannot be stored: something in the call")
        if events:
            self.calls.append(len(events))
        return await super().enqueue(events, state, **options)


async def test_a_chunk_the_queue_refuses_whole_is_queued_one_by_one(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    queue = await RefusingQueue.open(tmp_path / "q.db", "gw-test", QueueConfig())
    assert isinstance(queue, RefusingQueue)
    queue.calls = []
    try:
        source = MqttSource(mqtt_config(mosquitto), queue, "edge-split")
        async with running(source):
            await publish(mosquitto, [produced(TOPIC, f"s-{i}") for i in range(30)])
            await wait_until(lambda: source.stats().queued == 30, "all 30 queued")
        assert queue.refused > 1
        assert queue.calls[: queue.refused] == [1] * queue.refused  # the refused chunk, alone
        assert source.stats().rejected == 0
        assert len(await queued_events(queue)) == 30
    finally:
        await queue.close()
