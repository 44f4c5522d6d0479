"""GET /v1/probe on a real relay under uvicorn, and the agent's link check built on it.

A gateway with nothing to send must still learn, and show, whether its relay URL is right,
whether its key is registered and whether its clock is close enough: the probe is signed like a
batch, so it proves exactly what an upload would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.app import run_agent
from agent.config import AgentSettings
from agent.uploader.config import RelayConfig
from agent.uploader.relay_client import RelayClient
from tests.cloud_relay.conftest import Relay
from tests.cloud_relay.support import Gateway, batch_body, free_port, register, upload
from wire.keys import generate_private_key, write_keypair
from wire.probe import PROBE_PATH, parse_probe_answer
from wire.signing import sign_request

GW = "line-probe"
WAIT_SECONDS = 30.0


async def probe(relay: Relay, gateway: Gateway, *, created: int | None = None) -> httpx.Response:
    url = relay.url + PROBE_PATH
    headers = sign_request("GET", url, b"", gateway.private_key, created=created)
    return await relay.client.get(url, headers=headers)


async def test_a_registered_key_hears_its_gateway_acked_seq_and_the_relays_clock(
    relay: Relay,
) -> None:
    gateway = await register(relay.store, GW)
    assert (await upload(relay.client, relay.url, gateway, batch_body(GW, 1, 3))).status_code == 200
    before = datetime.now(UTC)
    response = await probe(relay, gateway)
    after = datetime.now(UTC)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["gateway_id"], body["key_id"], body["key"]) == (GW, gateway.key_id, "registered")
    assert body["acked_seq"] == 3
    answer = parse_probe_answer(body)
    assert answer is not None and answer.time is not None
    assert before <= answer.time <= after
    # A probe stores nothing.
    assert await relay.store.acked_seq(GW) == 3


async def test_an_unknown_and_a_revoked_key_are_told_apart(relay: Relay) -> None:
    stranger = Gateway(GW, generate_private_key())
    response = await probe(relay, stranger)
    assert response.status_code == 403
    assert response.json()["key"] == "unknown"
    gateway = await register(relay.store, GW)
    await relay.store.revoke_key(gateway.key_id)
    response = await probe(relay, gateway)
    assert response.status_code == 403
    assert (response.json()["key"], response.json()["key_id"]) == ("revoked", gateway.key_id)


async def test_a_stale_signature_is_answered_with_the_relays_clock(relay: Relay) -> None:
    gateway = await register(relay.store, GW)
    response = await probe(relay, gateway, created=int(time.time()) - 3600)
    assert response.status_code == 401
    answer = parse_probe_answer(response.json())
    assert answer is not None and answer.stale and answer.time is not None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_the_agents_link_check_names_each_way_the_link_is_wrong(relay: Relay) -> None:
    gateway = await register(relay.store, GW)

    async def check(url: str, key: Any = gateway.private_key, gateway_id: str = GW) -> Any:
        client = RelayClient(RelayConfig(url=url, timeout_seconds=5), key)
        try:
            return await client.probe(gateway_id)
        finally:
            await client.aclose()

    ok = await check(relay.url)
    assert ok.state == "ok", ok.words
    assert ok.acked_seq == 0
    wrong_url = await check(relay.url + "/plant")
    assert wrong_url.state == "wrong_url"
    assert f"{relay.url}/plant/v1/probe answered 404" in wrong_url.words
    unknown = await check(relay.url, key=generate_private_key())
    assert unknown.state == "key_refused"
    assert "does not know this gateway's key" in unknown.words
    other = await check(relay.url, gateway_id="line-other")
    assert other.state == "key_refused"
    assert f"registered to gateway {GW!r}, not 'line-other'" in other.words
    down = await check(f"http://127.0.0.1:{free_port()}")
    assert down.state == "unreachable"
    assert "cannot connect to relay" in down.words


@asynccontextmanager
async def running_agent(tmp_path: Path, relay_url: str, key_path: Path) -> AsyncIterator[str]:
    """An agent with nothing to send and no sources; yields its health page URL."""
    listen = f"127.0.0.1:{free_port()}"
    settings = AgentSettings.model_validate(
        {
            "gateway": {"id": GW, "signing_key_file": key_path, "state_dir": tmp_path / "state"},
            "relay": {"url": relay_url, "timeout_seconds": 5},
            "queue": {"durability": "process"},
            "health": {"listen": listen},
        }
    )
    agent = asyncio.create_task(run_agent(settings, install_signal_handlers=False))
    try:
        yield f"http://{listen}"
    finally:
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)


async def wait_for_health(url: str, what: str, holds: Any) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    body: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=5) as client:
        while time.monotonic() < deadline:
            try:
                body = (await client.get(f"{url}/healthz")).json()
            except httpx.TransportError:
                await asyncio.sleep(0.05)
                continue
            if holds(body):
                return body
            await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}; /healthz: {json.dumps(body)}")


async def page_text(url: str) -> str:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(url + "/")).text


def _check(body: dict[str, Any]) -> str | None:
    state: str | None = body["components"]["uploader"]["link_check"]
    return state


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_an_idle_agent_shows_the_links_true_state_before_any_event(
    relay: Relay, tmp_path: Path
) -> None:
    key_path = tmp_path / "gw.pem"
    key = write_keypair(key_path)

    async with running_agent(tmp_path / "a", relay.url, key_path) as url:
        body = await wait_for_health(url, "a refused key", lambda b: _check(b) == "key_refused")
        assert body["status"] == "red"
        assert any("does not know this gateway's key" in r for r in body["reasons"])
        page = await page_text(url)
        assert "Relay check" in page and "does not know this gateway" in page

    async with running_agent(tmp_path / "b", relay.url + "/wrong", key_path) as url:
        body = await wait_for_health(url, "a wrong URL", lambda b: _check(b) == "wrong_url")
        assert body["status"] == "red"
        assert any("answered 404" in reason for reason in body["reasons"])

    async with running_agent(tmp_path / "c", f"http://127.0.0.1:{free_port()}", key_path) as url:
        body = await wait_for_health(url, "no relay", lambda b: _check(b) == "unreachable")
        assert body["status"] == "amber"
        assert any(r.startswith("relay unreachable: cannot connect") for r in body["reasons"])

    await relay.store.add_key(GW, Gateway(GW, key).key_id, Gateway(GW, key).public_pem)
    async with running_agent(tmp_path / "d", relay.url, key_path) as url:
        body = await wait_for_health(url, "a good link", lambda b: _check(b) == "ok")
        assert body["status"] == "green", body["reasons"]
        page = await page_text(url)
        assert "the relay answers; nothing uploaded yet" in page
