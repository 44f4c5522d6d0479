"""Reconcile reports kept as history in the relay's SQLite database.

A run is written ``running`` when it starts and becomes ``complete`` (with its differences)
in one transaction when it ends, so a run cut short by a crash is never shown as complete: the
next open marks it ``interrupted``.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cloud_relay.reconcile.model import Difference, Report, Status, difference_from_json
from cloud_relay.storage.schema import Schema
from cloud_relay.storage.sqlite import SqliteStore, fetch_rows
from cloud_relay.storage.timestamps import format_utc, parse_utc

_SCHEMA = Schema(
    "reconcile",
    (
        (
            """CREATE TABLE reconcile_runs (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                started_at TEXT NOT NULL,
                finished_at TEXT,
                status TEXT NOT NULL,
                scope TEXT NOT NULL,
                checked TEXT NOT NULL DEFAULT '{}',
                odoo_calls TEXT NOT NULL DEFAULT '{}',
                error TEXT
            )""",
            """CREATE TABLE reconcile_differences (
                run_id INTEGER NOT NULL REFERENCES reconcile_runs (id) ON DELETE CASCADE,
                n INTEGER NOT NULL,
                kind TEXT NOT NULL,
                body TEXT NOT NULL,
                PRIMARY KEY (run_id, n)
            )""",
        ),
    ),
)
_COLUMNS = "id, started_at, finished_at, status, scope, checked, odoo_calls, error"


class SqliteReportStore(SqliteStore):
    """Reconcile runs and their differences, beside the inbox in one SQLite file."""

    def __init__(self, path: Path, *, durability: Literal["power", "process"] = "power") -> None:
        super().__init__(
            path,
            _SCHEMA,
            label="reconcile history",
            durability=durability,
            busy_timeout_seconds=5.0,
            user_version=False,
        )

    async def open(self) -> None:
        """Open, and mark runs a crash left ``running`` as ``interrupted``."""
        await super().open()

        async def work(db: Any) -> None:
            await db.execute(
                "UPDATE reconcile_runs SET status = 'interrupted' WHERE status = 'running'"
            )

        await self._write(work)

    async def start(self, started_at: datetime, scope: dict[str, Any]) -> int:
        """Record a run that has begun; its id."""

        async def work(db: Any) -> int:
            cursor = await db.execute(
                "INSERT INTO reconcile_runs (started_at, status, scope) VALUES (?, 'running', ?)",
                (format_utc(started_at), json.dumps(scope)),
            )
            return int(cursor.lastrowid)

        return await self._write(work)

    async def finish(self, report: Report) -> None:
        """Store a finished run with its differences, all in one transaction."""

        async def work(db: Any) -> None:
            await db.execute(
                "UPDATE reconcile_runs SET finished_at = ?, status = ?, checked = ?,"
                " odoo_calls = ?, error = ? WHERE id = ?",
                (
                    format_utc(report.finished_at) if report.finished_at else None,
                    report.status,
                    json.dumps(report.checked),
                    json.dumps(report.odoo_calls),
                    report.error,
                    report.id,
                ),
            )
            body = report.to_json()["differences"]
            await db.executemany(
                "INSERT INTO reconcile_differences (run_id, n, kind, body) VALUES (?, ?, ?, ?)",
                [(report.id, n, d["kind"], json.dumps(d)) for n, d in enumerate(body)],
            )

        await self._write(work)

    async def runs(self, limit: int = 20) -> list[Report]:
        """The latest runs, newest first, with their differences."""
        async with self._connection() as db:
            rows = await fetch_rows(
                db, f"SELECT {_COLUMNS} FROM reconcile_runs ORDER BY id DESC LIMIT ?", (limit,)
            )
            reports = []
            for row in rows:
                found = await fetch_rows(
                    db,
                    "SELECT body FROM reconcile_differences WHERE run_id = ? ORDER BY n",
                    (row[0],),
                )
                reports.append(
                    _report(row, [difference_from_json(json.loads(b[0])) for b in found])
                )
            return reports

    async def latest_complete(self) -> Report | None:
        """The newest complete run, or None."""
        for report in await self.runs(50):
            if report.status == "complete":
                return report
        return None


def _report(row: Any, differences: list[Difference]) -> Report:
    status: Status = row[3]
    started = parse_utc(row[1])
    assert started is not None
    return Report(
        id=int(row[0]),
        started_at=started,
        finished_at=parse_utc(row[2]) if row[2] else None,
        status=status,
        scope=json.loads(row[4]),
        differences=tuple(differences),
        odoo_calls=json.loads(row[6]),
        checked=json.loads(row[5]),
        error=row[7],
    )
