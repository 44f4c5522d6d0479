"""``cloud-relay reconcile [--json] [--order NAME] [--since TIME]``: one run now."""

from __future__ import annotations

import argparse
import contextlib
import json
from collections.abc import AsyncIterator

from cloud_relay.config import RelaySettings, StoreConfig
from cloud_relay.errors import ConfigError
from cloud_relay.reconcile.history import SqliteReportStore
from cloud_relay.reconcile.model import Report

EXIT_OK, EXIT_FAILURE = 0, 1


def history_store(config: StoreConfig) -> SqliteReportStore:
    """The reconcile history beside the inbox (a SQLite store only, for now)."""
    from cloud_relay.inbox.factory import sqlite_path

    if not config.url.startswith("sqlite:///"):
        raise ConfigError("[store] url: reconcile history is kept in a SQLite store only")
    return SqliteReportStore(sqlite_path(config.url), durability=config.durability)


@contextlib.asynccontextmanager
async def opened_history(config: StoreConfig) -> AsyncIterator[SqliteReportStore]:
    """The history, open for the block."""
    history = history_store(config)
    await history.open()
    try:
        yield history
    finally:
        await history.close()


async def run(settings: RelaySettings, args: argparse.Namespace) -> int:
    """One reconcile run, printed; exit 0 when it completed (differences or not)."""
    from cloud_relay.app import opened_posting_store, opened_store
    from cloud_relay.odoo.client import OdooClient
    from cloud_relay.reconcile.runner import Reconciler

    if settings.odoo is None:
        raise ConfigError("reconcile needs [odoo]: where Odoo is and as whom to call it")
    client = await OdooClient.connect(settings.odoo)
    try:
        async with (
            opened_store(settings.store) as inbox,
            opened_posting_store(settings.store) as store,
            opened_history(settings.store) as history,
        ):
            report = await Reconciler(client, store, inbox, history).run(
                order=args.order, since=args.since
            )
    finally:
        await client.close()
    print(json.dumps(report.to_json(), indent=2) if args.json else format_report(report))
    return EXIT_OK if report.status == "complete" else EXIT_FAILURE


def format_report(report: Report) -> str:
    """The report as text: one line per difference with both numbers."""
    calls = sum(report.odoo_calls.values())
    lines = [
        f"reconcile run {report.id}: {report.status}, {len(report.differences)} difference(s), "
        f"{calls} Odoo call(s), checked {report.checked}"
    ]
    if report.error:
        lines.append(f"  error: {report.error}")
    for d in report.differences:
        relay = "-" if d.relay is None else f"{d.relay:g}"
        odoo = "-" if d.odoo is None else f"{d.odoo:g}"
        lines.append(f"  {d.kind:<22} {d.subject}: relay {relay}, Odoo {odoo}")
        lines.append(f"  {'':<22} cause: {d.cause}")
        lines.append(f"  {'':<22} action: {d.action}")
    return "\n".join(lines)
