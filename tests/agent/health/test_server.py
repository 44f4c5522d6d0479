"""The health endpoints read the components' stats: page, /healthz and /metrics."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
import pytest

from agent.health.auth import Credentials
from agent.health.server import build_app


@dataclass(frozen=True)
class QueueStats:
    pending: int
    full: bool
    enqueued_total: int


@dataclass(frozen=True)
class SourceStats:
    connected: bool
    last_error: str | None


async def get(state: dict[str, object], path: str) -> httpx.Response:
    app = build_app(
        {"queue": lambda: state["queue"], "mqtt": lambda: state["mqtt"]},
        {"gateway_id": "gw-7", "key_id": "abc", "version": "1.0"},
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path)


async def test_healthz_reports_status_reasons_and_components() -> None:
    state = {"queue": QueueStats(3, False, 10), "mqtt": SourceStats(False, "connection refused")}
    resp = await get(state, "/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["status"] == "amber"
    assert body["reasons"] == ["mqtt source is not connected: connection refused"]
    assert body["gateway_id"] == "gw-7"
    assert body["components"]["queue"] == {"pending": 3, "full": False, "enqueued_total": 10}


async def test_healthz_is_503_when_red() -> None:
    state = {"queue": QueueStats(3, True, 10), "mqtt": SourceStats(True, None)}
    assert (await get(state, "/healthz")).status_code == 503


async def test_metrics_expose_stats_as_gauges_and_counters() -> None:
    state = {"queue": QueueStats(3, False, 10), "mqtt": SourceStats(True, None)}
    text = (await get(state, "/metrics")).text
    assert "edge_agent_queue_pending 3.0" in text
    assert "edge_agent_queue_enqueued_total 10.0" in text
    assert "# TYPE edge_agent_queue_enqueued_total counter" in text
    assert "edge_agent_mqtt_connected 1.0" in text


async def test_page_shows_the_verdict_and_reason() -> None:
    state = {"queue": QueueStats(0, False, 0), "mqtt": SourceStats(False, "broker down")}
    page = (await get(state, "/")).text
    assert "AMBER" in page
    assert "mqtt source is not connected: broker down" in page
    assert "gw-7" in page


# -- beyond loopback: the page and /metrics need credentials, /healthz tells strangers little --

GUARD = Credentials(token="s3cret", username="tech", password="pa55")


async def get_guarded(path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    state = {"queue": QueueStats(3, False, 10), "mqtt": SourceStats(False, "broker down")}
    app = build_app(
        {"queue": lambda: state["queue"], "mqtt": lambda: state["mqtt"]},
        {"gateway_id": "gw-7", "key_id": "abc", "version": "1.0"},
        GUARD,
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path, headers=headers or {})


def basic(user: str, password: str) -> dict[str, str]:
    pair = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


@pytest.mark.parametrize("path", ["/", "/metrics"])
async def test_page_and_metrics_refuse_a_stranger_with_a_login_prompt(path: str) -> None:
    resp = await get_guarded(path)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == 'Basic realm="edge agent", charset="UTF-8"'
    assert "gw-7" not in resp.text


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        basic("tech", "wrong"),
        basic("someone", "pa55"),
        {"Authorization": "Basic not-base64!"},
        {"Authorization": "Digest s3cret"},
    ],
)
async def test_wrong_credentials_are_refused(headers: dict[str, str]) -> None:
    assert (await get_guarded("/metrics", headers)).status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer s3cret"},
        basic("tech", "pa55"),
        basic("anyone", "s3cret"),
    ],
)
async def test_token_or_basic_auth_opens_page_and_metrics(headers: dict[str, str]) -> None:
    page = await get_guarded("/", headers)
    assert page.status_code == 200 and "gw-7" in page.text
    metrics = await get_guarded("/metrics", headers)
    assert "edge_agent_queue_pending 3.0" in metrics.text


async def test_healthz_stays_open_but_tells_a_stranger_only_the_verdict() -> None:
    stranger = await get_guarded("/healthz")
    assert stranger.status_code == 200
    assert stranger.json() == {
        "status": "amber",
        "reasons": ["mqtt source is not connected: broker down"],
    }
    known = (await get_guarded("/healthz", {"Authorization": "Bearer s3cret"})).json()
    assert known["gateway_id"] == "gw-7"
    assert known["components"]["queue"]["pending"] == 3


async def test_page_needs_no_credentials_when_none_are_configured() -> None:
    assert not Credentials().required
    assert Credentials().allow(None)
