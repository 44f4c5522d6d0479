"""kill -9 of a relay process in the middle of a reconcile run and in the middle of pruning:
nothing is lost, and no partial report is ever shown as complete."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cloud_relay.odoo.sandbox.faults import FaultRule
from cloud_relay.reconcile.history import SqliteReportStore
from tests.cloud_relay.posting.harness import needs_sandbox, rig
from tests.cloud_relay.reconcile.test_drift import _chain, reconciler
from tests.cloud_relay.retention.test_pruning import fill

pytestmark = pytest.mark.timeout(180)
KILL_EVENTS = int(os.environ.get("RETENTION_KILL_EVENTS", "20000"))


async def _until(condition: Callable[[], bool], what: str, within: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def _one(path: Path, sql: str) -> object:
    db = sqlite3.connect(path)
    try:
        row = db.execute(sql).fetchone()
        return row[0] if row else None
    finally:
        db.close()


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)


async def test_kill_during_a_reconcile_run_leaves_it_interrupted(tmp_path: Path) -> None:
    needs_sandbox()
    path = tmp_path / "inbox.db"
    async with rig(tmp_path, 18) as r:
        await _chain(r)
        async with reconciler(r, path) as (reconcile, _):
            first = await reconcile.run()
        assert first.status == "complete"
        ledgers = {s.order_key: s.ledger for s in await r.store.orders()}
        assert r.odoo is not None
        r.odoo.faults.add(
            FaultRule(kind="delay", model="stock.quant", method="search_read", delay_seconds=120)
        )
        r.odoo.faults.reset_calls()
        config = tmp_path / "relay.toml"
        config.write_text(
            f'[store]\nurl = "sqlite:///{path}"\n[writer]\nenabled = false\n'
            f'[odoo]\nurl = "{r.odoo.base_url}"\ndatabase = "{r.odoo.database}"\n'
            f'login = "{r.odoo.login}"\napi_key = "{r.odoo.api_key}"\n'
        )
        process = subprocess.Popen(  # noqa: ASYNC220 (started and killed, never waited on)
            [sys.executable, "-m", "cloud_relay", "reconcile", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await _until(
                lambda: (
                    r.odoo is not None
                    and r.odoo.faults.calls().get("stock.quant.search_read", 0) >= 1
                ),
                "the run to reach its slow Odoo call",
            )
            assert _one(path, "SELECT status FROM reconcile_runs ORDER BY id DESC") == "running"
        finally:
            _kill(process)
        r.odoo.faults.clear()
        history = SqliteReportStore(path)
        await history.open()
        try:
            runs = await history.runs()
            assert [run.status for run in runs] == ["interrupted", "complete"]
            assert runs[0].differences == ()
            assert await history.latest_complete() == first
        finally:
            await history.close()
        # The run only reads: every ledger is as it was, and the next run completes.
        assert {s.order_key: s.ledger for s in await r.store.orders()} == ledgers
        async with reconciler(r, path) as (reconcile, _):
            assert (await reconcile.run()).status == "complete"


PRUNE = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.retention.config import RetentionConfig
from cloud_relay.retention.pruner import Pruner
from cloud_relay.retention.sqlite import SqlitePruner

async def main() -> None:
    path = Path(sys.argv[1])
    store, history = SqlitePruner(path), SqliteReportStore(path)
    await store.open()
    await history.open()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    try:
        await Pruner(store, history, RetentionConfig(batch=50), clock=lambda: now).run_once()
    finally:
        await store.close()
        await history.close()

asyncio.run(main())
"""


async def test_kill_during_pruning_loses_nothing(tmp_path: Path) -> None:
    from cloud_relay.inbox.sqlite import SqliteInbox
    from cloud_relay.posting.sqlite import SqlitePostingStore
    from cloud_relay.reconcile.model import Report
    from tests.cloud_relay.retention.test_pruning import NOW

    path = tmp_path / "relay.db"
    for store in (SqliteInbox(path), SqlitePostingStore(path), SqliteReportStore(path)):
        await store.open()
        if isinstance(store, SqliteReportStore):
            run = await store.start(NOW, {})
            await store.finish(Report(run, NOW, NOW, "complete", {}, (), {}, {}))
        await store.close()
    await asyncio.to_thread(fill, path, KILL_EVENTS)
    count = "SELECT count(*) FROM postings WHERE gateway_id = 'old'"
    process = subprocess.Popen([sys.executable, "-c", PRUNE, str(path)])  # noqa: ASYNC220
    try:
        await _until(
            lambda: int(_one(path, count) or 0) < KILL_EVENTS * 3 // 4, "pruning to be under way"
        )
    finally:
        _kill(process)
    left = int(_one(path, count) or 0)
    assert 2 < left < KILL_EVENTS
    # Every batch went whole: each remaining posting still has its event, and no event is left
    # without its posting.
    orphans = _one(
        path,
        "SELECT count(*) FROM postings p WHERE gateway_id = 'old'"
        " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = p.event_id)",
    )
    widows = _one(
        path,
        "SELECT count(*) FROM events e WHERE gateway_id = 'old'"
        " AND NOT EXISTS (SELECT 1 FROM postings p WHERE p.event_id = e.id)",
    )
    assert (orphans, widows) == (0, 0)
    assert _one(path, "SELECT count(*) FROM dead_letters") == 1
    # Pruning again finishes the job; the kept rows are still there.
    await asyncio.to_thread(subprocess.run, [sys.executable, "-c", PRUNE, str(path)], check=True)
    assert _one(path, count) == 2
