"""The health endpoints read the components' stats: page, /healthz and /metrics."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

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
