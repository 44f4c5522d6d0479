"""A figure holding a string without a UTF-8 form never breaks the page or the probe.

Reject reasons quote what a source received, and a payload may hold a lone UTF-16 surrogate: the
page and ``/healthz`` must still answer (a liveness probe reads ``/healthz``), showing it escaped.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from agent.health.server import build_app


@dataclass(frozen=True)
class SourceStats:
    connected: bool
    rejected: int
    last_reject: str | None
    last_error: str | None


@dataclass(frozen=True)
class QueueStats:
    pending: int
    full: bool
    last_error: str | None


async def _get(path: str) -> httpx.Response:
    stats = SourceStats(False, 3, 'topic t: dedupe_key: /msg_id: "\ud800" is bad', "lost \udc00")
    queue = QueueStats(1, False, "commit failed: \ud83d")
    app = build_app({"queue": lambda: queue, "mqtt": lambda: stats}, {"gateway_id": "gw-1"})
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        return await c.get(path)


async def test_page_shows_unencodable_text_escaped() -> None:
    resp = await _get("/")
    assert resp.status_code == 200
    assert "\\ud800" in resp.text and "\\udc00" in resp.text and "\\ud83d" in resp.text


async def test_healthz_answers_with_unencodable_text() -> None:
    resp = await _get("/healthz")
    assert resp.status_code == 200
    body = resp.json()
    assert body["components"]["mqtt"]["last_reject"].endswith('"\\ud800" is bad')
    assert any("\\udc00" in reason for reason in body["reasons"])
