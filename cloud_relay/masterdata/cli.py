"""``cloud-relay bom``: submit, list, diff, approve, refuse, retry, rollback, history.

``submit`` takes the JSON document of :mod:`wire.bom` or an indented CSV export
(:mod:`wire.bom_csv`); ``approve`` publishes at once (a round of the publishing job, under
its lease) unless the revision has a later effective date, which the running relay's job
then keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import socket
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cloud_relay.config import RelaySettings
from cloud_relay.errors import ConfigError, RelayError
from cloud_relay.masterdata import flow, service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.catalog import boms_of_templates
from cloud_relay.masterdata.diff import diff
from cloud_relay.masterdata.factory import BomStore, opened_bom_store
from cloud_relay.masterdata.job import BomPublishingJob
from cloud_relay.masterdata.service import BomInvalid
from cloud_relay.odoo.client import OdooClient
from wire.bom import BomSubmission, parse_submission
from wire.bom_csv import parse_bom_csv
from wire.errors import WireError

EXIT_OK, EXIT_FAILURE = 0, 1


def terminal_actor() -> str:
    """Who is at the terminal, when ``--by`` is not given."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def read_submission(path: Path) -> BomSubmission:
    """A JSON document or a CSV export, by content; WireError names the field or row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if text.lstrip().startswith("{"):
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not JSON: {exc}") from exc
        return parse_submission(value)
    return parse_bom_csv(text)


@contextlib.asynccontextmanager
async def _odoo(settings: RelaySettings) -> AsyncIterator[OdooClient]:
    if settings.odoo is None:
        raise ConfigError("[odoo] is not configured: BOMs are checked against Odoo")
    client = await OdooClient.connect(settings.odoo)
    try:
        yield client
    finally:
        await client.close()


async def run_demo(args: argparse.Namespace) -> int:
    """``bom demo`` needs no settings: it brings its own sandbox and store."""
    from cloud_relay.masterdata.demo import run_demo as demo

    return await demo(args.file, args.odoo_version)


async def run_bom(settings: RelaySettings, args: argparse.Namespace) -> int:
    """Run one ``bom`` action; exit code."""
    try:
        async with opened_bom_store(settings.store) as store:
            return await _action(settings, store, args)
    except BomInvalid as exc:
        print(
            f"cloud-relay: the submission is refused ({len(exc.problems)} problems):",
            file=sys.stderr,
        )
        for problem in exc.problems:
            print(f"  {problem.location}: {problem}", file=sys.stderr)
        return EXIT_FAILURE
    except WireError as exc:
        print(f"cloud-relay: {args.file}: {exc}", file=sys.stderr)
        return EXIT_FAILURE


async def _action(settings: RelaySettings, store: BomStore, args: argparse.Namespace) -> int:
    config = settings.bom
    command = args.bom_command
    if command == "submit":
        submission = read_submission(args.file)
        async with _odoo(settings) as odoo:
            outcome = await service.submit(
                store, odoo, config, submission, by=args.by or terminal_actor(), via="cli"
            )
        keys = ", ".join(f"{r.product} {r.revision}" for r in submission.revisions)
        if args.json:
            print(json.dumps({"id": outcome.id, "created": outcome.created}))
        elif outcome.created:
            print(f"submitted #{outcome.id} ({keys}): waiting for approval")
        else:
            print(f"already submitted as #{outcome.id} ({keys}): nothing changed")
        return EXIT_OK
    if command == "list":
        rows = await store.run(lambda tx: s.list_submissions(tx, 200))
        if args.json:
            print(json.dumps([_row(r) for r in rows], indent=2))
        for r in [] if args.json else rows:
            extra = r.park_reason or r.last_error or ""
            who = f"by {r.submitted_by}"
            print(f"#{r.id:<5} {r.state:<10} {r.top_product} {r.top_revision}  {who}  {extra}")
        return EXIT_OK
    if command == "diff":
        return await _diff(settings, store, args.id, args.json)
    if command == "approve":
        row = await service.approve(store, config, args.id, by=args.by, reason=args.reason)
        if row.publish_after is not None:
            print(f"approved #{row.id}: published at {row.publish_after.isoformat()} by the relay")
            return EXIT_OK
        if args.no_publish or settings.odoo is None:
            print(f"approved #{row.id}: the running relay publishes it")
            return EXIT_OK
        job = BomPublishingJob(store, settings.odoo, config)
        try:
            await job.run_once()
        finally:
            await job.close()
        latest = await store.run(lambda tx: s.get_submission(tx, args.id))
        state = latest.state if latest else "?"
        detail = f": {latest.park_reason}" if latest and latest.park_reason else ""
        print(f"approved #{args.id}: {state}{detail}")
        return EXIT_OK if state in ("published", "approved", "publishing") else EXIT_FAILURE
    if command == "refuse":
        await service.refuse(store, args.id, by=args.by, reason=args.reason)
        print(f"refused #{args.id}")
        return EXIT_OK
    if command == "retry":
        await service.retry(store, args.id, by=args.by, reason=args.reason)
        print(f"#{args.id} will be published on the relay's next round")
        return EXIT_OK
    if command == "rollback":
        async with _odoo(settings) as odoo:
            await flow.rollback(
                store, odoo, config, args.product, args.revision, by=args.by, reason=args.reason
            )
        print(f"{args.product}: revision {args.revision} is current again")
        return EXIT_OK
    return await _history(settings, store, args.product, args.on, args.json)


def _row(r: s.Submission) -> dict[str, Any]:
    return {
        "id": r.id,
        "state": r.state,
        "product": r.top_product,
        "revision": r.top_revision,
        "submitted_by": r.submitted_by,
        "received_at": r.received_at.isoformat(),
        "decided_by": r.decided_by,
        "publish_after": r.publish_after.isoformat() if r.publish_after else None,
        "published_at": r.published_at.isoformat() if r.published_at else None,
        "park_reason": r.park_reason,
    }


async def _diff(settings: RelaySettings, store: BomStore, submission_id: int, as_json: bool) -> int:
    row = await store.run(lambda tx: s.get_submission(tx, submission_id))
    if row is None:
        raise RelayError(f"no BOM submission #{submission_id}")
    async with _odoo(settings) as odoo:
        result = await service.check(store, odoo, settings.bom, service.submission_of(row))
        if not result.ok:
            raise BomInvalid(result.problems)
        diffs = []
        for plan in result.plans:
            current = next(
                (b for b in await boms_of_templates(odoo, [plan.template_id]) if b.active), None
            )
            codes: dict[int, str] = {}
            if current is not None:
                ids = sorted({p for p, _, _, _ in current.lines})
                for r in await odoo.read("product.product", ids, ["default_code"]) if ids else []:
                    codes[int(r["id"])] = str(r.get("default_code") or r["id"])
            diffs.append(diff(plan, current, codes))
    if as_json:
        print(json.dumps([d.to_dict() for d in diffs], indent=2))
    else:
        for d in diffs:
            print("\n".join(d.lines()))
    return EXIT_OK


async def _history(
    settings: RelaySettings, store: BomStore, product: str, on: str | None, as_json: bool
) -> int:
    if settings.odoo is not None:
        async with _odoo(settings) as odoo:
            found = await flow.history(store, odoo, product)
    else:
        found = await flow.history(store, None, product)
    at = datetime.fromisoformat(on).astimezone(UTC) if on else None
    if as_json:
        data = found.to_dict()
        if at is not None:
            data["current_on"] = {"at": at.isoformat(), "revision": found.current_on(at)}
        print(json.dumps(data, indent=2))
        return EXIT_OK
    if at is not None:
        print(f"{product} on {at.isoformat()}: revision {found.current_on(at) or 'none published'}")
    for entry in found.current:
        why = f"  ({entry.reason})" if entry.reason else ""
        print(f"{entry.since.isoformat()}  revision {entry.revision}  by {entry.actor}{why}")
    for order, revision, state, created in found.orders:
        print(f"  {order:<16} revision {revision:<8} {state:<10} {created}")
    return EXIT_OK
