"""MqttSource against a real mosquitto and a real QueueStore: mapping, rejects, acks, bounds."""

from __future__ import annotations

import asyncio
import fcntl
import json
import struct
import termios
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.errors import TransientError
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.mqtt.config import MqttSubscription
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import (
    GatedQueue,
    mqtt_config,
    produced,
    publish,
    queued_events,
    running,
    wait_until,
)
from tests.fixtures.mosquitto import Mosquitto


async def test_rules_map_fields_static_topic_levels_and_timestamps(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    produced_rule = MqttSubscription(
        topic="plant/+/produced",
        event="production.reported",
        fields={"order": "/order", "qty": "/counts/good"},
        static={"uom": "Units"},
        topic_fields={"workcenter": 1},
        occurred_at="/ts",
        dedupe_key="/msg_id",
    )
    signal_rule = MqttSubscription(
        topic="line/#", qos=0, event="signal.sampled", fields={"name": "/n", "value": "/v"}
    )
    config = mqtt_config(mosquitto, produced_rule, signal_rule)
    source = MqttSource(config, queue, "edge-test")
    before = datetime.now(UTC)
    async with running(source):
        await publish(
            mosquitto,
            [
                (
                    "plant/m3/produced",
                    json.dumps(
                        {
                            "order": "WH/MO/00007",
                            "counts": {"good": 2.5},
                            "msg_id": "a-1",
                            "ts": "2024-05-01T10:00:00.250+02:00",
                        }
                    ).encode(),
                ),
                ("line/a/b/temp", b'{"n": "temp", "v": 21.5}'),
            ],
        )
        await wait_until(lambda: source.stats().queued == 2, "two events queued")
    after = datetime.now(UTC)
    first, second = await queued_events(queue)
    assert first["type"] == "production.reported"
    assert first["data"] == {
        "order": "WH/MO/00007",
        "qty": 2.5,
        "uom": "Units",
        "workcenter": "m3",
    }
    assert first["occurred_at"] == "2024-05-01T08:00:00.250000Z"
    assert first["source"] == "mqtt:plant/m3/produced"
    assert first["gateway_id"] == "gw-test"
    assert second["type"] == "signal.sampled"
    assert second["data"] == {"name": "temp", "value": 21.5}
    assert second["source"] == "mqtt:line/a/b/temp"
    received_at = datetime.fromisoformat(second["occurred_at"])
    assert before <= received_at <= after
    stats = source.stats()
    assert (stats.received, stats.rejected, stats.duplicates) == (2, 0, 0)
    assert stats.last_message_at is not None


async def test_each_kind_of_reject_is_counted_kept_and_traffic_goes_on(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    timed = MqttSubscription(
        topic="plant/+/produced",
        event="production.reported",
        fields={"order": "/order", "qty": "/qty"},
        occurred_at="/ts",
        dedupe_key="/msg_id",
    )
    source = MqttSource(mqtt_config(mosquitto, timed), queue, "edge-test")
    ts = "2024-05-01T10:00:00Z"
    bad = [
        ("plant/l1/produced", b"not json", "payload is not JSON: Expecting value: line 1 column 1"),
        (
            *produced("plant/l1/produced", "m1", qty=0, ts=ts),
            "/qty: input should be greater than 0",
        ),
        (
            "plant/l1/produced",
            json.dumps({"order": "WH/MO/1", "msg_id": "m2", "ts": ts}).encode(),
            "/qty: field required (pointer /qty not in payload)",
        ),
        (
            "plant/l1/produced",
            json.dumps({"order": "WH/MO/1", "qty": 1, "ts": ts}).encode(),
            "dedupe_key: pointer /msg_id not in payload",
        ),
        (
            "plant/l1/produced",
            json.dumps({"order": "WH/MO/1", "qty": 1, "msg_id": "m3"}).encode(),
            "occurred_at: pointer /ts not in payload",
        ),
        (
            "plant/l1/produced",
            json.dumps(
                {"order": "WH/MO/1", "qty": 1, "msg_id": "m4", "ts": "2024-05-01 10:00"}
            ).encode(),
            'occurred_at: /ts: "2024-05-01 10:00" is not an RFC 3339 timestamp',
        ),
    ]
    async with running(source):
        await publish(mosquitto, [(topic, payload) for topic, payload, _ in bad])
        await publish(mosquitto, [produced("plant/l1/produced", "ok-1", ts=ts)])
        await wait_until(
            lambda: source.stats().queued == 1, "the healthy message after the rejects"
        )
        stats = source.stats()
        assert stats.connected
    assert stats.rejected == len(bad)
    assert stats.last_reject is not None and "occurred_at" in stats.last_reject
    rejects = list(reversed(await queue.recent_rejects(limit=20)))
    assert len(rejects) == len(bad)
    for reject, (topic, payload, reason) in zip(rejects, bad, strict=True):
        assert reject.source == "mqtt"
        assert reject.where == topic
        assert reject.reason.startswith(f"topic {topic}: ")
        assert reason in reject.reason
        assert reject.payload == payload
    events = await queued_events(queue)
    assert [e["data"] for e in events] == [{"order": "WH/MO/00001", "qty": 1.0}]


async def test_rejected_payload_is_kept_up_to_1024_bytes(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    source = MqttSource(mqtt_config(mosquitto), queue, "edge-test")
    big = b"x" * 5000
    async with running(source):
        await publish(mosquitto, [("plant/l1/produced", big)])
        await wait_until(lambda: source.stats().rejected == 1, "the reject")
    (reject,) = await queue.recent_rejects()
    assert reject.payload == big[:1024]


async def test_a_redelivered_message_id_is_a_duplicate_not_a_second_event(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    source = MqttSource(mqtt_config(mosquitto), queue, "edge-test")
    async with running(source):
        await publish(
            mosquitto,
            [
                produced("plant/l1/produced", 1),
                produced("plant/l1/produced", 2),
                produced("plant/l2/produced", 1),  # same filter, same key: a duplicate
                produced("plant/l1/produced", 3),
            ],
        )
        await wait_until(
            lambda: source.stats().queued + source.stats().duplicates == 4, "all four handled"
        )
        stats = source.stats()
        await wait_until(lambda: source.stats().unacked == 0, "every message acknowledged")
    assert (stats.queued, stats.duplicates) == (3, 1)
    events = await queued_events(queue)
    assert [e["source"] for e in events] == [
        "mqtt:plant/l1/produced",
        "mqtt:plant/l1/produced",
        "mqtt:plant/l1/produced",
    ]


async def test_puback_only_after_commit_so_an_uncommitted_message_comes_back(
    mosquitto: Mosquitto, gated_queue: GatedQueue
) -> None:
    config = mqtt_config(mosquitto)
    gated_queue.gate.clear()  # every enqueue blocks: nothing can be committed
    first = MqttSource(config, gated_queue, "edge-test")
    async with running(first):
        await publish(mosquitto, [produced("plant/l1/produced", "held")])
        await wait_until(lambda: gated_queue.calls == [1], "the event to reach the queue")
        assert first.stats().unacked == 1
    assert await queued_events(gated_queue) == []

    gated_queue.gate.set()
    second = MqttSource(config, gated_queue, "edge-test")
    async with running(second):
        await wait_until(lambda: second.stats().queued == 1, "the redelivered message")
    events = await queued_events(gated_queue)
    assert [e["data"]["order"] for e in events] == ["WH/MO/00001"]


async def test_a_failed_commit_is_retried_then_acknowledged(
    mosquitto: Mosquitto, gated_queue: GatedQueue
) -> None:
    config = mqtt_config(mosquitto)
    gated_queue.fail_next.append(TransientError("disk I/O error"))
    source = MqttSource(config, gated_queue, "edge-test")
    async with running(source):
        await publish(mosquitto, [produced("plant/l1/produced", "retried")])
        await wait_until(lambda: source.stats().queued == 1, "the retried commit")
        await wait_until(lambda: source.stats().unacked == 0, "the PUBACK")
        assert source.stats().last_error == "disk I/O error"
    # Acknowledged: a new session gets only what is published after, not the message again.
    again = MqttSource(config, gated_queue, "edge-test")
    async with running(again):
        await publish(mosquitto, [produced("plant/l1/produced", "sentinel")])
        await wait_until(lambda: again.stats().queued >= 1, "the sentinel")
        assert again.stats().received == 1
    assert len(await queued_events(gated_queue)) == 2


async def test_a_message_whose_commit_keeps_failing_comes_back_after_a_reconnect(
    mosquitto: Mosquitto, gated_queue: GatedQueue
) -> None:
    gated_queue.fail_next.extend(TransientError("disk I/O error") for _ in range(10_000))
    source = MqttSource(mqtt_config(mosquitto), gated_queue, "edge-test")
    async with running(source):
        await publish(mosquitto, [produced("plant/l1/produced", "unlucky")])
        await wait_until(lambda: len(gated_queue.calls) >= 2, "a failed commit retried")
        await asyncio.to_thread(mosquitto.restart)  # the connection drops, the session stays
        await wait_until(
            lambda: source.stats().reconnects >= 1 and source.stats().connected, "a reconnect"
        )
        gated_queue.fail_next.clear()
        await wait_until(lambda: source.stats().queued == 1, "the redelivered message")
        assert source.stats().received == 2
    events = await queued_events(gated_queue)
    assert len(events) == 1


def _unread_bytes(source: MqttSource) -> int:
    """Bytes the broker has sent that wait unread in the source's socket."""
    link = source._link
    assert link is not None and link._sock is not None
    buf = fcntl.ioctl(link._sock.fileno(), termios.FIONREAD, struct.pack("i", 0))
    return int(struct.unpack("i", buf)[0])


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_reading_stops_at_max_unacked_messages_and_resumes_after_acks(
    mosquitto: Mosquitto, gated_queue: GatedQueue, protocol: str
) -> None:
    config = mqtt_config(mosquitto, max_unacked_messages=10, protocol=protocol)
    gated_queue.gate.clear()
    source = MqttSource(config, gated_queue, "edge-test")
    async with running(source):
        await publish(mosquitto, [produced("plant/l1/produced", i) for i in range(100)])
        await wait_until(lambda: source.stats().received == 10, "the first ten messages")
        if protocol == "3.1.1":
            # mosquitto 2.0 does not hold its window against a manual-acking 3.1.1 client: it
            # has sent more, and they wait unread. (With MQTT 5 it honours Receive Maximum.)
            await wait_until(lambda: _unread_bytes(source) > 0, "the broker to send past the bound")
        for _ in range(20):
            await asyncio.sleep(0)  # let the loop run any reader callback it has
        assert source.stats().received == 10
        assert source.stats().unacked == 10
        gated_queue.gate.set()
        await wait_until(lambda: source.stats().queued == 100, "all hundred queued")
    assert max(gated_queue.calls) <= 10
    events = await queued_events(gated_queue)
    assert [e["data"]["order"] for e in events] == ["WH/MO/00001"] * 100


async def _drain(queue: QueueStore, into: list[dict[str, object]], until: int) -> None:
    """Act as the uploader: read what is queued, keep it, acknowledge it."""
    acked = 0
    while len(into) < until:
        await queue.wait_until_pending(acked)
        batch = await queue.read_batch(acked, 50, 1 << 20)
        into.extend(json.loads(ev.body) for ev in batch)
        acked = batch[-1].seq
        await queue.ack_through(acked)


async def _fill(mosquitto: Mosquitto, source: MqttSource) -> int:
    """Publish in rounds of 100 until the source pauses on a full queue; return how many."""
    sent = 0
    while not source.stats().paused:
        batch = range(sent, sent + 100)
        await publish(
            mosquitto, [produced("plant/l1/produced", i, order=f"WH/MO/{i:05d}") for i in batch]
        )
        sent += 100
        await wait_until(
            lambda n=sent: source.stats().queued == n or source.stats().paused,
            f"{sent} queued or a pause",
        )
    return sent


async def test_queue_full_pauses_and_resumes_without_loss(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    store = await QueueStore.open(
        tmp_path / "queue.db", "gw-test", QueueConfig(max_bytes=64 * 1024)
    )
    try:
        source = MqttSource(mqtt_config(mosquitto), store, "edge-test")
        async with running(source):
            count = await _fill(mosquitto, source)
            assert store.is_full
            assert source.stats().connected
            assert source.stats().queued < count
            drained: list[dict[str, object]] = []
            await asyncio.wait_for(_drain(store, drained, count), timeout=60)
            await wait_until(lambda: not source.stats().paused, "the pause to end")
        assert [source_id(e) for e in drained] == list(range(count))
    finally:
        await store.close()


def source_id(event: dict[str, object]) -> int:
    """The msg_id behind an event: its dedupe record is not in the body, so use the order."""
    data = event["data"]
    assert isinstance(data, dict)
    return int(str(data["order"]).rsplit("/", 1)[1])


async def test_a_long_full_queue_hands_the_session_back_and_loses_nothing(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    store = await QueueStore.open(
        tmp_path / "queue.db", "gw-test", QueueConfig(max_bytes=64 * 1024)
    )
    try:
        config = mqtt_config(mosquitto, keepalive_seconds=5)
        source = MqttSource(config, store, "edge-test")
        async with running(source):
            count = await _fill(mosquitto, source)
            await wait_until(
                lambda: source.stats().paused and not source.stats().connected,
                "the source to disconnect while the queue stays full",
            )
            assert source.stats().last_error == "disconnected: queue full"
            drained: list[dict[str, object]] = []
            await asyncio.wait_for(_drain(store, drained, count), timeout=60)
            await wait_until(lambda: source.stats().connected, "the source to reconnect")
        assert [source_id(e) for e in drained] == list(range(count))
    finally:
        await store.close()
