"""The upkeep the relay runs: the latest report and database size on the admin API, the
differences per kind on /metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client import generate_latest

from cloud_relay.config import RelaySettings, ServerConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.model import Difference, Report
from cloud_relay.reconcile.service import start_upkeep

AT = datetime(2026, 6, 1, tzinfo=UTC)


async def test_latest_report_on_metrics_and_admin_api(tmp_path: Path) -> None:
    path = tmp_path / "relay.db"
    history = SqliteReportStore(path)
    await history.open()
    run = await history.start(AT, {})
    drift = Difference("on_hand", "BOLT at WH/Stock", 20.0, 15.0, "a move", "check")
    await history.finish(Report(run, AT, AT, "complete", {}, (drift,), {"x.search_read": 2}, {}))
    await history.start(AT, {})  # a run still going: not the one shown
    await history.close()
    settings = RelaySettings(
        store={"url": f"sqlite:///{path}"}, retention={"interval_seconds": 3600}
    )
    inbox, posting = SqliteInbox(path), SqlitePostingStore(path)
    await inbox.open()
    await posting.open()
    metrics = RelayMetrics()
    app = build_app(inbox, ServerConfig(), admin_token="secret", metrics=metrics)
    upkeep = await start_upkeep(settings, inbox, posting, metrics, app, "secret")
    assert upkeep is not None
    try:
        text = generate_latest(metrics.registry).decode()
        assert 'cloud_relay_reconcile_differences{kind="on_hand"} 1.0' in text
        assert 'cloud_relay_reconcile_differences{kind="mo_consumed"} 0.0' in text
        assert "cloud_relay_database_bytes" in text
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://relay") as http:
            assert (await http.get("/v1/reconcile")).status_code == 401
            answer = await http.get("/v1/reconcile", headers={"Authorization": "Bearer secret"})
        body = answer.json()
        assert body["latest"]["id"] == run and body["latest"]["counts"]["on_hand"] == 1
        assert body["database_bytes"] > 0 and body["retention"]["keep_days"] == 30
    finally:
        await upkeep.stop()
        await inbox.close()
        await posting.close()
