"""What a person or a PLM connector can do with BOM revisions, shared by the CLI, the HTTP
API and the publishing job: submit, approve, refuse, retry a parked one, roll back.

Every decision is written with its actor and reason to the BOM audit log in the same
transaction as the change it records.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.catalog import load_catalog
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.factory import BomStore
from cloud_relay.masterdata.store import BomRejected, Submission, Submitted, Tx
from cloud_relay.masterdata.validate import Problem, Validation, validate
from cloud_relay.odoo.client import OdooClient
from wire.bom import BomRevision, BomSubmission, parse_submission

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class BomInvalid(BomRejected):
    """A submission that fails validation; ``problems`` names each line and field."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True, slots=True)
class SubmitOutcome:
    id: int
    created: bool
    """False: the very same revisions were submitted before as ``id`` (nothing changed)."""


def submission_of(row: Submission) -> BomSubmission:
    return parse_submission(json.loads(row.body))


async def known_revisions(
    tx: Tx, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], BomRevision]:
    """The content of previously submitted revisions, from their submissions' bodies."""
    found: dict[tuple[str, str], BomRevision] = {}
    for product, revision in keys:
        row = await s.revision(tx, product, revision)
        if row is None:
            continue
        sub = await s.get_submission(tx, row.submission_id)
        if sub is None:
            continue
        for rev in submission_of(sub).revisions:
            if rev.key == (product, revision):
                found[rev.key] = rev
    return found


def referenced(submission: BomSubmission) -> list[tuple[str, str]]:
    given = {r.key for r in submission.revisions}
    return sorted(
        {
            (line.product, line.revision)
            for r in submission.revisions
            for line in r.lines
            if line.revision is not None and (line.product, line.revision) not in given
        }
    )


async def check(
    store: BomStore, odoo: OdooClient, config: BomConfig, submission: BomSubmission
) -> Validation:
    """Validate against Odoo as it is now (nothing is written anywhere)."""
    keys = referenced(submission)
    known = await store.run(lambda tx: known_revisions(tx, keys))
    catalog = await load_catalog(odoo, [*submission.revisions, *known.values()])
    return validate(submission, catalog, released_statuses=config.released_statuses, known=known)


async def submit(
    store: BomStore,
    odoo: OdooClient,
    config: BomConfig,
    submission: BomSubmission,
    *,
    by: str,
    via: str,
    clock: Clock = utc_now,
) -> SubmitOutcome:
    """Validate, then record the submission waiting for approval (BomInvalid / BomRejected)."""
    result = await check(store, odoo, config, submission)
    if not result.ok:
        raise BomInvalid(result.problems)
    ordered = [p.revision for p in result.plans]
    body = submission.model_copy(update={"revisions": tuple(ordered)}).encode().decode()
    news = [s.NewRevision(r.product, r.revision, r.content_hash()) for r in ordered]

    async def work(tx: Tx) -> Submitted:
        return await s.add_submission(tx, body=body, by=by, via=via, revisions=news, now=clock())

    done = await store.run(work)
    return SubmitOutcome(done.id, done.created)


async def _pending(tx: Tx, submission_id: int, states: Sequence[str]) -> Submission:
    row = await s.get_submission(tx, submission_id)
    if row is None:
        raise BomRejected(f"no BOM submission #{submission_id}")
    if row.state not in states:
        raise BomRejected(
            f"BOM submission #{submission_id} is {row.state}, not {' or '.join(states)}"
        )
    return row


async def approve(
    store: BomStore,
    config: BomConfig,
    submission_id: int,
    *,
    by: str,
    reason: str | None,
    clock: Clock = utc_now,
) -> Submission:
    """Approve a pending submission: published at once, or at its effective date."""

    async def work(tx: Tx) -> Submission:
        row = await _pending(tx, submission_id, ["pending"])
        if config.four_eyes and by.strip().casefold() == row.submitted_by.strip().casefold():
            raise BomRejected(
                f"BOM submission #{submission_id} was submitted by {row.submitted_by}: "
                "another person must approve it (four-eyes rule)"
            )
        now = clock()
        top = submission_of(row).revisions[-1]
        after = top.effective_at if top.effective_at and top.effective_at > now else None
        await s.set_state(
            tx,
            submission_id,
            "approved",
            now,
            decided_by=by,
            decided_at=now,
            reason=reason,
            publish_after=after,
        )
        await s.audit(
            tx, now, by, "approve", submission_id, row.top_product, row.top_revision, reason
        )
        found = await s.get_submission(tx, submission_id)
        assert found is not None
        return found

    return await store.run(work)


async def refuse(
    store: BomStore, submission_id: int, *, by: str, reason: str, clock: Clock = utc_now
) -> None:
    """Refuse a pending or parked submission; its revisions may be submitted again."""

    async def work(tx: Tx) -> None:
        row = await _pending(tx, submission_id, ["pending", "parked", "approved"])
        now = clock()
        await s.set_state(
            tx, submission_id, "refused", now, decided_by=by, decided_at=now, reason=reason
        )
        await s.refuse_revisions(tx, submission_id)
        await s.audit(
            tx, now, by, "refuse", submission_id, row.top_product, row.top_revision, reason
        )

    await store.run(work)


async def retry(
    store: BomStore, submission_id: int, *, by: str, reason: str, clock: Clock = utc_now
) -> None:
    """Publish a parked submission after all (for drift: superseding the BOM changed in Odoo)."""

    async def work(tx: Tx) -> None:
        row = await _pending(tx, submission_id, ["parked"])
        now = clock()
        await s.set_state(tx, submission_id, "approved", now, park_reason=None, force=1)
        await s.audit(
            tx, now, by, "retry", submission_id, row.top_product, row.top_revision, reason
        )

    await store.run(work)
