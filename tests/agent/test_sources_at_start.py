"""At start the agent says which sources run and which are configured but do not, and why:
in the log and on the health page (the example config's OPC UA nodes have no endpoint)."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.app import run_agent
from agent.config import AgentSettings
from agent.sources.mqtt.config import MqttConfig
from agent.sources.opcua.config import OpcuaConfig
from agent.sources.selection import select_sources
from tests.fixtures.mosquitto import free_port
from wire.keys import write_keypair

NODE = {
    "name": "good-parts",
    "namespace_uri": "urn:plant:line1",
    "identifier": "s=Line1.GoodParts",
    "rule": "counter",
    "event": "production.reported",
}


async def test_opcua_nodes_without_an_endpoint_are_named_in_the_log_and_on_the_page(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_keypair(tmp_path / "gw.pem")
    listen = f"127.0.0.1:{free_port()}"
    settings = AgentSettings.model_validate(
        {
            "gateway": {
                "id": "gw-sources",
                "signing_key_file": tmp_path / "gw.pem",
                "state_dir": tmp_path / "state",
            },
            "relay": {"url": f"http://127.0.0.1:{free_port()}", "probe_interval_seconds": 0},
            "queue": {"durability": "process"},
            "opcua": {"order": {"value": "WH/MO/1"}, "nodes": [NODE, {**NODE, "name": "b"}]},
            "health": {"listen": listen},
        }
    )
    caplog.set_level(logging.INFO, "agent.app")
    agent = asyncio.create_task(run_agent(settings, install_signal_handlers=False))
    try:
        body = await _healthz(f"http://{listen}", agent)
        async with httpx.AsyncClient(timeout=5) as client:
            page = (await client.get(f"http://{listen}/")).text
    finally:
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
    why = "2 [[opcua.nodes]] configured but no [opcua] endpoint"
    assert body["disabled_sources"] == {"opcua": why}
    assert "opcua" not in body["components"]
    assert "<section id='source-opcua'><h2>OPC UA endpoint</h2>" in page
    assert f"<th>Not running</th><td><span class='warn'>{why}</span>" in page
    messages = [r.getMessage() for r in caplog.records]
    assert "no source runs: nothing new is read, only what is queued is sent" in messages
    assert f"source opcua is configured but does not run: {why}" in messages


async def _healthz(url: str, task: asyncio.Task[Any]) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=5) as client:
        while True:
            if task.done():
                task.result()
            try:
                body: dict[str, Any] = (await client.get(f"{url}/healthz")).json()
                return body
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)


def test_running_sources_and_a_broker_without_subscriptions() -> None:
    selection = select_sources(MqttConfig(host="broker.plant"), OpcuaConfig())
    assert selection.running == ()
    assert selection.disabled == {
        "mqtt": "[mqtt] names broker broker.plant:1883 but has no [[mqtt.subscriptions]]"
    }
    assert select_sources(MqttConfig(), OpcuaConfig()).disabled == {}
    running = select_sources(
        MqttConfig(), OpcuaConfig(endpoint="opc.tcp://plc:4840/", order={"value": "MO/1"})
    )
    assert running.running == ("opcua",)
