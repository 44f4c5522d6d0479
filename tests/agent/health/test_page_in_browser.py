"""The health page as a technician sees it, in a real headless Chromium, against a real agent.

Each test runs the whole agent (``run_agent``) against a real mosquitto and a real relay
stand-in, brings about one state by acting on those (stopping the broker, stopping the relay,
filling the queue), waits for ``/healthz`` to say so, then reads the page in Chromium the way a
person would: the verdict, its reason, and the source, queue and uplink cards. Screenshots are
saved under the test's ``tmp_path`` (the path is printed).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Page

from agent import __version__
from agent.app import run_agent
from agent.config import AgentSettings
from agent.health.config import HealthConfig
from agent.health.server import HealthServer
from tests.browser import PageFactory, browser_pages, screenshot
from tests.fixtures.mosquitto import Mosquitto, free_port, publish_qos1, running_mosquitto
from tests.fixtures.receiver import Receiver
from wire.keys import key_id, write_keypair

__all__ = ["browser_pages"]

GATEWAY_ID = "gw-page"
TOPIC = "plant/line1/produced"
WAIT_SECONDS = 30.0
#: The smallest queue allowed, so that a few hundred reports fill it.
QUEUE_MAX_BYTES = 64 * 1024
GREEN, AMBER, RED = "rgb(27, 127, 59)", "rgb(154, 91, 0)", "rgb(176, 0, 32)"


@dataclass
class Plant:
    """A running agent and the broker and relay it talks to."""

    broker: Mosquitto
    relay: Receiver
    url: str
    key_id: str
    client: httpx.AsyncClient

    async def health(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.client.get(f"{self.url}/healthz")).json()
        return body

    async def wait_for(self, what: str, holds: Callable[[dict[str, Any]], bool]) -> None:
        """Poll ``/healthz`` until ``holds`` is true of it; fail naming ``what`` after a while."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while not holds(body := await self.health()):
            if loop.time() > deadline:
                pytest.fail(f"timed out waiting for {what}; /healthz: {json.dumps(body)}")
            await asyncio.sleep(0.05)

    async def publish(self, *payloads: dict[str, Any]) -> None:
        messages = [(TOPIC, json.dumps(p).encode()) for p in payloads]
        await asyncio.to_thread(publish_qos1, self.broker.host, self.broker.port, messages)


@asynccontextmanager
async def running_plant(tmp_path: Path, *, registered: bool = True) -> AsyncIterator[Plant]:
    """Run the agent against mosquitto and the relay stand-in until the block ends."""
    key = write_keypair(tmp_path / "gateway.key")
    relay = Receiver()
    if registered:
        relay.register(GATEWAY_ID, key.public_key())
    listen = f"127.0.0.1:{free_port()}"
    with running_mosquitto(tmp_path / "mosquitto") as broker:
        async with relay, httpx.AsyncClient(timeout=5) as client:
            settings = AgentSettings.model_validate(
                {
                    "gateway": {
                        "id": GATEWAY_ID,
                        "signing_key_file": tmp_path / "gateway.key",
                        "state_dir": tmp_path / "state",
                    },
                    "relay": {
                        "url": relay.url,
                        "batch_max_age_ms": 20,
                        "backoff_initial_seconds": 0.05,
                        "backoff_max_seconds": 0.5,
                        "timeout_seconds": 5,
                    },
                    "queue": {"durability": "process", "max_bytes": QUEUE_MAX_BYTES},
                    "mqtt": {
                        "host": broker.host,
                        "port": broker.port,
                        "reconnect_min_seconds": 0.05,
                        "reconnect_max_seconds": 0.5,
                        "subscriptions": [
                            {
                                "topic": TOPIC,
                                "event": "production.reported",
                                "fields": {"order": "/order", "qty": "/qty"},
                                "dedupe_key": "/msg_id",
                            }
                        ],
                    },
                    "health": {"listen": listen},
                }
            )
            agent = asyncio.create_task(run_agent(settings, install_signal_handlers=False))
            plant = Plant(broker, relay, f"http://{listen}", key_id(key.public_key()), client)
            try:
                await _wait_for_server(plant.url, client, agent)
                await plant.wait_for(
                    "the MQTT source to connect",
                    lambda h: h["components"]["mqtt"]["connected"],
                )
                yield plant
            finally:
                agent.cancel()
                await asyncio.gather(agent, return_exceptions=True)


async def _wait_for_server(url: str, client: httpx.AsyncClient, task: asyncio.Task[Any]) -> None:
    """Return once ``url`` answers ``/healthz``; fail if ``task`` ends first or it takes long."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        if task.done():
            task.result()
            pytest.fail("the health server stopped before it answered")
        try:
            await client.get(f"{url}/healthz")
            return
        except httpx.TransportError:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.05)


def report(n: int, order: str = "WH/MO/00042") -> dict[str, Any]:
    return {"order": order, "qty": 1, "msg_id": f"m-{n}"}


async def card(page: Page, ident: str) -> dict[str, str]:
    """One card of the page as a person reads it: row label -> what it says."""
    rows = page.locator(f"#{ident} tr")
    read = {}
    for i in range(await rows.count()):
        row = rows.nth(i)
        read[await row.locator("th").inner_text()] = await row.locator("td").inner_text()
    return read


async def open_page(new_page: PageFactory, plant: Plant) -> Page:
    page = await new_page()
    response = await page.goto(plant.url + "/")
    assert response is not None and response.status == 200
    return page


async def verdict(page: Page) -> tuple[str, list[str], str]:
    """The banner: its word, its reasons, its colour."""
    word = await page.locator("#verdict h1").inner_text()
    reasons = await page.locator("#verdict li").all_inner_texts()
    colour = await page.locator("#verdict").evaluate("e => getComputedStyle(e).backgroundColor")
    return word, reasons, str(colour)


async def test_healthy_agent_reads_green_with_every_figure(
    browser_pages: PageFactory, tmp_path: Path
) -> None:
    async with running_plant(tmp_path) as plant:
        await plant.publish(report(1), report(2))
        await plant.wait_for(
            "both reports acknowledged by the relay",
            lambda h: (
                h["components"]["uploader"]["relay_acked_seq"] == 2
                and h["components"]["queue"]["pending"] == 0
            ),
        )
        page = await open_page(browser_pages, plant)
        await screenshot(page, tmp_path / "screens" / "healthy.png")

        assert await verdict(page) == ("GREEN", ["all components healthy"], GREEN)
        assert await page.title() == f"GREEN: edge agent {GATEWAY_ID}"
        identity = await page.locator("#identity").inner_text()
        assert f"Gateway {GATEWAY_ID}" in identity
        assert f"key id {plant.key_id}" in identity
        assert f"version {__version__}" in identity

        source = await card(page, "source-mqtt")
        title = await page.locator("#source-mqtt h2").inner_text()
        assert title == f"MQTT broker 127.0.0.1:{plant.broker.port}"
        assert source["Connection"].startswith("connected since ")
        assert source["Last value"].endswith(("just now)", " ago)"))
        assert source["Rejected"] == "none"

        queue = await card(page, "queue")
        assert queue["Pending events"] == "0"
        assert queue["Oldest event"] == "none waiting"
        assert queue["Space used"].startswith("0 bytes of 64.0 KiB (0%)")
        assert queue["Overflow"] == "not full"

        uplink = await card(page, "uplink")
        assert uplink["Link"] == "up: the relay accepts uploads"
        assert uplink["Last success"].endswith(("just now)", " ago)"))
        assert uplink["Last error"] == "none"
        assert uplink["Acknowledged"] == "events through seq 2 (deleted here)"
        assert uplink["Relay has confirmed"] == "events through seq 2"
        assert uplink["Relay check"].startswith("the relay answers and knows this gateway's key")
        assert uplink["Time to drain"] == "nothing to send"
        assert uplink["Clock vs relay"] == "in step (within about a second)"
        # Plain words only: no raw field name stands beside them in the cards.
        cards = await page.locator(".cards").inner_text()
        for raw in ("acked_seq", "relay_acked_seq", "last_error", "link_up"):
            assert raw not in cards


async def test_rejected_payloads_turn_the_banner_amber_with_the_last_reason(
    browser_pages: PageFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = [{"order": "WH/MO/00042", "qty": "lots", "msg_id": f"bad-{n}"} for n in range(4)]
    bad.append({"qty": 1, "msg_id": "bad-4"})  # the last one lacks its order
    async with running_plant(tmp_path) as plant:
        await plant.publish(report(1), bad[0], report(2), *bad[1:], report(3))
        await plant.wait_for(
            "three reports at the relay and five rejected",
            lambda h: (
                h["components"]["uploader"]["relay_acked_seq"] == 3
                and h["components"]["mqtt"]["rejected"] == 5
            ),
        )
        page = await open_page(browser_pages, plant)
        await screenshot(page, tmp_path / "screens" / "rejects.png")

        word, reasons, colour = await verdict(page)
        assert (word, colour) == ("AMBER", AMBER)
        assert len(reasons) == 1
        assert reasons[0].startswith("mqtt source rejected 5 payloads in the last 5 minutes")
        assert reasons[0].endswith(
            f"; the last: topic {TOPIC}: /order: field required (pointer /order not in payload)"
        )
        source = await card(page, "source-mqtt")
        assert source["Rejected"].startswith("5 (5 in the last 5 min); the last (")
        assert "/order: field required" in source["Rejected"]
        assert "edge-agent rejects" in source["Rejected"]

    # Logged with topic and reason, once for the burst rather than once per payload.
    logged = [r.getMessage() for r in caplog.records if "rejected a payload" in r.getMessage()]
    assert len(logged) == 1
    assert logged[0].startswith(f"MQTT rejected a payload: topic {TOPIC}: /qty: ")

    # And listed, newest first, with when and why.
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[gateway]\nid = "{GATEWAY_ID}"\nsigning_key_file = "{tmp_path}/gateway.key"\n'
        f'state_dir = "{tmp_path}/state"\n'
    )
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent", "rejects", "--json", "--limit", "3", "--config", config],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    assert listing["total"] == 5
    assert [r["where"] for r in listing["rejects"]] == [TOPIC] * 3
    newest = listing["rejects"][0]
    assert newest["reason"].endswith("/order: field required (pointer /order not in payload)")
    assert json.loads(newest["payload"]) == bad[4]
    assert all(r["source"] == "mqtt" and r["at"] for r in listing["rejects"])
    text = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent", "rejects", "--config", config],
        capture_output=True,
        text=True,
        check=False,
    )
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("5 payload(s) rejected in all; the newest 5, newest first:")
    assert text.stdout.count("    why:     ") == 5


async def test_an_unregistered_key_reads_red_before_the_first_event(
    browser_pages: PageFactory, tmp_path: Path
) -> None:
    async with running_plant(tmp_path, registered=False) as plant:
        await plant.wait_for(
            "the start-up probe to hear the key refused",
            lambda h: h["components"]["uploader"]["link_check"] == "key_refused",
        )
        page = await open_page(browser_pages, plant)
        await screenshot(page, tmp_path / "screens" / "key-refused.png")

        word, reasons, colour = await verdict(page)
        assert (word, colour) == ("RED", RED)
        refused = f"the relay does not know this gateway's key {plant.key_id}: register it"
        assert reasons == [
            f"relay link: {refused} there with `cloud-relay gateway add --id {GATEWAY_ID} "
            "--public-key <key>.pub`"
        ]
        uplink = await card(page, "uplink")
        assert uplink["Link"] == "down"
        assert uplink["Relay check"].startswith(refused)
        assert uplink["Last success"] == "none since start"
        assert plant.relay.requests == []  # nothing was uploaded: the probe alone told


async def test_broker_down_reads_amber_naming_the_broker(
    browser_pages: PageFactory, tmp_path: Path
) -> None:
    async with running_plant(tmp_path) as plant:
        plant.broker.stop()
        await plant.wait_for(
            "the source to notice the broker is gone",
            lambda h: not h["components"]["mqtt"]["connected"],
        )
        page = await open_page(browser_pages, plant)
        await screenshot(page, tmp_path / "screens" / "broker-down.png")

        word, reasons, colour = await verdict(page)
        assert (word, colour) == ("AMBER", AMBER)
        assert len(reasons) == 1
        assert reasons[0].startswith("mqtt source is not connected: ")
        source = await card(page, "source-mqtt")
        assert source["Connection"].startswith("not connected since ")
        assert source["Why"] == reasons[0].removeprefix("mqtt source is not connected: ")
        assert source["Last value"] == "none yet"
        assert (await card(page, "uplink"))["Link"] == "the relay answers; nothing uploaded yet"


async def test_relay_unreachable_reads_amber_with_the_error_and_no_drain_promise(
    browser_pages: PageFactory, tmp_path: Path
) -> None:
    async with running_plant(tmp_path) as plant:
        await plant.publish(report(1))
        await plant.wait_for(
            "the first report at the relay",
            lambda h: h["components"]["uploader"]["relay_acked_seq"] == 1,
        )
        await plant.relay.stop()
        await plant.publish(report(2), report(3))
        refused = f"cannot connect to relay at {plant.relay.url}/v1/batches: "
        await plant.wait_for(
            "the uploader to find the relay gone",
            lambda h: (h["components"]["uploader"]["last_error"] or "").startswith(refused),
        )
        page = await open_page(browser_pages, plant)
        await screenshot(page, tmp_path / "screens" / "relay-unreachable.png")

        word, reasons, colour = await verdict(page)
        assert (word, colour) == ("AMBER", AMBER)
        assert len(reasons) == 1
        assert reasons[0].startswith(f"relay unreachable: {refused}")
        uplink = await card(page, "uplink")
        assert uplink["Link"] == "down"
        assert uplink["Last error"].startswith(refused)
        assert uplink["Last success"].endswith(("just now)", " ago)"))
        assert uplink["Acknowledged"] == "events through seq 1 (deleted here)"
        assert uplink["Relay has confirmed"] == "events through seq 1"
        assert uplink["Time to drain"] == "none while the link is down"
        queue = await card(page, "queue")
        assert queue["Pending events"] == "2 (seq 2..3)"
        assert queue["Oldest event"].startswith("waiting ")
        assert queue["Overflow"] == "not full"


async def test_full_queue_reads_red_and_says_sources_are_paused(
    browser_pages: PageFactory, tmp_path: Path
) -> None:
    async with running_plant(tmp_path) as plant:
        await plant.relay.stop()
        await plant.publish(*(report(n, order="WH/MO/" + "9" * 200) for n in range(600)))
        await plant.wait_for(
            "the queue to fill, the source to pause and the uploader to fail",
            lambda h: (
                h["components"]["queue"]["full"]
                and h["components"]["mqtt"]["paused"]
                and h["components"]["uploader"]["last_error"] is not None
            ),
        )
        page = await open_page(browser_pages, plant)
        await screenshot(page, tmp_path / "screens" / "queue-full.png")

        word, reasons, colour = await verdict(page)
        assert (word, colour) == ("RED", RED)
        assert reasons[0] == "queue is full (the byte limit is reached): sources are paused"
        assert any(reason.startswith("relay unreachable: ") for reason in reasons)
        queue = await card(page, "queue")
        assert queue["Overflow"] == "FULL (the byte limit is reached): sources are paused"
        used = queue["Space used"].splitlines()[0]
        assert " of 64.0 KiB (" in used
        assert int(used.rsplit("(", 1)[1].rstrip("%)")) >= 100
        assert (await card(page, "source-mqtt"))["Reading"] == "paused while the queue is full"
        assert (await card(page, "uplink"))["Time to drain"] == "none while the link is down"


async def test_a_browser_logs_in_with_the_token_when_one_is_set(
    browser_pages: PageFactory, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    listen = f"127.0.0.1:{free_port()}"
    config = HealthConfig(listen=listen, token_file=tmp_path / "token")
    server = HealthServer(config, {}, {"gateway_id": GATEWAY_ID})
    serving = asyncio.create_task(server.serve())
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            await _wait_for_server(f"http://{listen}", client, serving)
        guesser = await browser_pages(credentials=("technician", "guess"))
        response = await guesser.goto(f"http://{listen}/")
        assert response is not None and response.status == 401
        assert "gw-page" not in await guesser.content()
        technician = await browser_pages(credentials=("technician", "s3cret"))
        response = await technician.goto(f"http://{listen}/")
        assert response is not None and response.status == 200
        assert await technician.locator("#verdict h1").inner_text() == "GREEN"
        await screenshot(technician, tmp_path / "screens" / "logged-in.png")
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
