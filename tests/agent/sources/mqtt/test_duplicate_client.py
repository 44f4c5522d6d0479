"""Two agents with one gateway id share an MQTT client id and knock each other off the broker:
each says so, in its log and on its health page, instead of only "connection lost"."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.health.status import assess
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import mqtt_config, running, wait_until
from tests.fixtures.mosquitto import Mosquitto

CLIENT_ID = "edge-agent-line1-gw"


@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_two_agents_with_one_client_id_are_told_apart_from_a_bad_link(
    mosquitto: Mosquitto,
    tmp_path: Path,
    protocol: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = mqtt_config(mosquitto, protocol=protocol)
    first_queue = await QueueStore.open(tmp_path / "a.db", "line1-gw", QueueConfig())
    second_queue = await QueueStore.open(tmp_path / "b.db", "line1-gw", QueueConfig())
    first = MqttSource(config, first_queue, CLIENT_ID)
    second = MqttSource(config, second_queue, CLIENT_ID)
    caplog.set_level(logging.ERROR, "agent.sources.mqtt.source")
    try:
        async with running(first), running(second, connected=False):
            await wait_until(
                lambda: (
                    first.stats().duplicate_client is not None
                    and second.stats().duplicate_client is not None
                ),
                "both agents to see their sessions taken over",
            )
            suspect = first.stats().duplicate_client
            assert suspect is not None
            assert f"another client is connected with the MQTT client id {CLIENT_ID!r}" in suspect
            # MQTT 5 may say "Session taken over" (0x8E); mosquitto 2.0 just closes, as in 3.1.1.
            assert (
                "the session was taken over by a new connection" in suspect
                or "connections in a row within 1 s of accepting them" in suspect
            )
            health = assess({"mqtt": first.stats()})
            assert health.status == "red"
            assert health.reasons[0] == f"mqtt source: {suspect}"
    finally:
        await first_queue.close()
        await second_queue.close()
    logged = [r.getMessage() for r in caplog.records if "another client" in r.getMessage()]
    assert logged, "the takeover was not logged"


async def test_a_broker_restart_is_not_taken_for_a_second_client(
    mosquitto: Mosquitto, queue: QueueStore
) -> None:
    source = MqttSource(mqtt_config(mosquitto), queue, CLIENT_ID)
    async with running(source):
        for _ in range(4):
            reconnects = source.stats().reconnects
            mosquitto.stop()
            # An outage is seen as such: the agent fails to connect at least once.
            await wait_until(
                lambda: "cannot connect" in (source.stats().last_error or ""),
                "a reconnect attempt to fail",
            )
            mosquitto.start()
            await wait_until(
                lambda n=reconnects: source.stats().connected and source.stats().reconnects > n,
                "the source to reconnect",
            )
        assert source.stats().duplicate_client is None
