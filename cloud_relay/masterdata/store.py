"""The BOM store: submissions, their immutable revisions, which revision is current per
product since when, the decisions people took (audit) and the publishing lease.

The rules are written once, over a :class:`Tx` (one transaction, ``?`` placeholders);
:mod:`cloud_relay.masterdata.sqlite` and :mod:`cloud_relay.masterdata.postgres` supply it on
the relay's SQLite file or PostgreSQL database, beside the inbox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from cloud_relay.errors import RejectedError
from wire.bom import revision_order

State = Literal["pending", "approved", "publishing", "published", "refused", "parked"]


class BomRejected(RejectedError):
    """A submission or decision the rules refuse; the message says which rule and why."""


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Tx(Protocol):
    """One open transaction."""

    async def fetch(self, sql: str, *params: Any) -> list[Sequence[Any]]: ...

    async def execute(self, sql: str, *params: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class NewRevision:
    product: str
    revision: str
    content_hash: str


@dataclass(frozen=True, slots=True)
class Submission:
    id: int
    received_at: datetime
    submitted_by: str
    via: str
    body: str
    top_product: str
    top_revision: str
    state: State
    publish_after: datetime | None
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    published_at: datetime | None
    park_reason: str | None
    attempts: int
    last_error: str | None
    force: bool
    """Publish even though the product's BOM was changed in Odoo (a person decided so)."""


@dataclass(frozen=True, slots=True)
class RevisionRow:
    product: str
    revision: str
    submission_id: int
    content_hash: str
    odoo_bom_id: int | None
    fingerprint: str | None
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class CurrentEntry:
    product: str
    revision: str
    since: datetime
    actor: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class BomAuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    submission_id: int | None
    product: str | None
    revision: str | None
    reason: str | None


@dataclass(frozen=True, slots=True)
class BomCounts:
    """Submissions by state, for the admin page and /metrics."""

    pending: int
    approved: int
    published: int
    refused: int
    parked: int


@dataclass(frozen=True, slots=True)
class Submitted:
    """The outcome of a submission: its id, and whether it was new (False: the very same
    revisions were submitted before, as ``id``)."""

    id: int
    created: bool


_SUBMISSION_COLUMNS = (
    "id, received_at, submitted_by, via, body, top_product, top_revision, state, publish_after,"
    " decided_by, decided_at, reason, published_at, park_reason, attempts, last_error, force"
)
_REVISION_COLUMNS = (
    "product, revision, submission_id, content_hash, odoo_bom_id, fingerprint, published_at"
)


def _submission(row: Sequence[Any]) -> Submission:
    return Submission(
        int(row[0]),
        datetime.fromisoformat(row[1]),
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        parse_time(row[8]),
        row[9],
        parse_time(row[10]),
        row[11],
        parse_time(row[12]),
        row[13],
        int(row[14]),
        row[15],
        bool(row[16]),
    )


def _revision(row: Sequence[Any]) -> RevisionRow:
    return RevisionRow(
        row[0],
        row[1],
        int(row[2]),
        row[3],
        int(row[4]) if row[4] is not None else None,
        row[5],
        parse_time(row[6]),
    )


async def add_submission(
    tx: Tx,
    *,
    body: str,
    by: str,
    via: str,
    revisions: Sequence[NewRevision],
    now: datetime,
) -> Submitted:
    """Record a submission whose revisions are new, or recognise one already made.

    A revision already known with the same content is reused (sub-assemblies shared between
    submissions); with other content it is refused; a new revision ordered before one already
    known for its product is refused as out of sequence. All of it or none.
    """
    top = revisions[-1]
    known: dict[tuple[str, str], RevisionRow] = {}
    for new in revisions:
        rows = await tx.fetch(
            f"SELECT {_REVISION_COLUMNS} FROM bom_revisions WHERE product = ? AND refused = 0",
            new.product,
        )
        existing = [_revision(r) for r in rows]
        same = next((r for r in existing if r.revision == new.revision), None)
        if same is not None:
            if same.content_hash != new.content_hash:
                raise BomRejected(
                    f"{new.product} revision {new.revision}: already submitted "
                    f"(#{same.submission_id}) with other content; revisions are immutable, give "
                    "the change a new revision"
                )
            known[(new.product, new.revision)] = same
            continue
        later = [r for r in existing if revision_order(r.revision) > revision_order(new.revision)]
        if later:
            newest = max(later, key=lambda r: revision_order(r.revision))
            raise BomRejected(
                f"{new.product} revision {new.revision}: out of sequence, revision "
                f"{newest.revision} is already known (#{newest.submission_id})"
            )
    if (top.product, top.revision) in known:
        return Submitted(known[(top.product, top.revision)].submission_id, False)
    rows = await tx.fetch(
        "INSERT INTO bom_submissions (received_at, submitted_by, via, body, top_product,"
        " top_revision, state) VALUES (?, ?, ?, ?, ?, ?, 'pending') RETURNING id",
        iso(now),
        by,
        via,
        body,
        top.product,
        top.revision,
    )
    submission_id = int(rows[0][0])
    for new in revisions:
        if (new.product, new.revision) not in known:
            await tx.execute(
                "INSERT INTO bom_revisions (submission_id, product, revision, content_hash)"
                " VALUES (?, ?, ?, ?)",
                submission_id,
                new.product,
                new.revision,
                new.content_hash,
            )
    await audit(tx, now, by, "submit", submission_id, top.product, top.revision, None)
    return Submitted(submission_id, True)


async def audit(
    tx: Tx,
    at: datetime,
    actor: str,
    action: str,
    submission_id: int | None,
    product: str | None,
    revision: str | None,
    reason: str | None,
) -> None:
    await tx.execute(
        "INSERT INTO bom_audit (at, actor, action, submission_id, product, revision, reason)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        iso(at),
        actor,
        action,
        submission_id,
        product,
        revision,
        reason,
    )


async def get_submission(tx: Tx, submission_id: int) -> Submission | None:
    rows = await tx.fetch(
        f"SELECT {_SUBMISSION_COLUMNS} FROM bom_submissions WHERE id = ?", submission_id
    )
    return _submission(rows[0]) if rows else None


async def list_submissions(tx: Tx, limit: int) -> list[Submission]:
    rows = await tx.fetch(
        f"SELECT {_SUBMISSION_COLUMNS} FROM bom_submissions ORDER BY id DESC LIMIT ?", limit
    )
    return [_submission(r) for r in rows]


async def due_submissions(tx: Tx, now: datetime) -> list[Submission]:
    """Approved submissions whose time has come, and any left half-published."""
    rows = await tx.fetch(
        f"SELECT {_SUBMISSION_COLUMNS} FROM bom_submissions WHERE state = 'publishing'"
        " OR (state = 'approved' AND (publish_after IS NULL OR publish_after <= ?)) ORDER BY id",
        iso(now),
    )
    return [_submission(r) for r in rows]


async def set_state(tx: Tx, submission_id: int, state: State, now: datetime, **fields: Any) -> None:
    """Move a submission to ``state``, setting any of its other columns by name."""
    allowed = {
        "publish_after",
        "decided_by",
        "decided_at",
        "reason",
        "published_at",
        "park_reason",
        "parked_at",
        "last_error",
        "force",
    }
    assignments = ["state = ?"]
    params: list[Any] = [state]
    for name, value in fields.items():
        if name not in allowed:
            raise ValueError(name)
        assignments.append(f"{name} = ?")
        params.append(iso(value) if isinstance(value, datetime) else value)
    del now
    await tx.execute(
        f"UPDATE bom_submissions SET {', '.join(assignments)} WHERE id = ?", *params, submission_id
    )


async def count_attempt(tx: Tx, submission_id: int, error: str) -> None:
    await tx.execute(
        "UPDATE bom_submissions SET attempts = attempts + 1, last_error = ? WHERE id = ?",
        error,
        submission_id,
    )


async def refuse_revisions(tx: Tx, submission_id: int) -> None:
    """Free the keys of a refused submission's revisions for a corrected resubmission."""
    await tx.execute(
        "UPDATE bom_revisions SET refused = 1 WHERE submission_id = ? AND published_at IS NULL",
        submission_id,
    )


async def revision(tx: Tx, product: str, rev: str) -> RevisionRow | None:
    rows = await tx.fetch(
        f"SELECT {_REVISION_COLUMNS} FROM bom_revisions"
        " WHERE product = ? AND revision = ? AND refused = 0",
        product,
        rev,
    )
    return _revision(rows[0]) if rows else None


async def revisions_of(tx: Tx, product: str) -> list[RevisionRow]:
    rows = await tx.fetch(
        f"SELECT {_REVISION_COLUMNS} FROM bom_revisions WHERE product = ? AND refused = 0",
        product,
    )
    return sorted((_revision(r) for r in rows), key=lambda r: revision_order(r.revision))


async def mark_revision_published(
    tx: Tx, product: str, rev: str, bom_id: int, fingerprint: str, now: datetime
) -> None:
    await tx.execute(
        "UPDATE bom_revisions SET odoo_bom_id = ?, fingerprint = ?,"
        " published_at = coalesce(published_at, ?) WHERE product = ? AND revision = ?"
        " AND refused = 0",
        bom_id,
        fingerprint,
        iso(now),
        product,
        rev,
    )


async def set_current(
    tx: Tx, product: str, rev: str, now: datetime, actor: str, reason: str | None
) -> None:
    """Record that ``rev`` is what Odoo picks for ``product`` from ``now`` (if not already)."""
    current = await current_of(tx, product)
    if current is not None and current.revision == rev:
        return
    await tx.execute(
        "INSERT INTO bom_current (product, revision, since, actor, reason) VALUES (?, ?, ?, ?, ?)",
        product,
        rev,
        iso(now),
        actor,
        reason,
    )


async def current_log(tx: Tx, product: str) -> list[CurrentEntry]:
    rows = await tx.fetch(
        "SELECT product, revision, since, actor, reason FROM bom_current WHERE product = ?"
        " ORDER BY id",
        product,
    )
    return [CurrentEntry(r[0], r[1], datetime.fromisoformat(r[2]), r[3], r[4]) for r in rows]


async def current_of(tx: Tx, product: str) -> CurrentEntry | None:
    log = await current_log(tx, product)
    return log[-1] if log else None


async def audit_log(tx: Tx, limit: int) -> list[BomAuditEntry]:
    rows = await tx.fetch(
        "SELECT id, at, actor, action, submission_id, product, revision, reason FROM bom_audit"
        " ORDER BY id DESC LIMIT ?",
        limit,
    )
    return [
        BomAuditEntry(int(r[0]), datetime.fromisoformat(r[1]), r[2], r[3], r[4], r[5], r[6], r[7])
        for r in rows
    ]


async def counts(tx: Tx) -> BomCounts:
    rows = await tx.fetch("SELECT state, count(*) FROM bom_submissions GROUP BY state")
    by_state = {str(r[0]): int(r[1]) for r in rows}
    return BomCounts(
        by_state.get("pending", 0),
        by_state.get("approved", 0) + by_state.get("publishing", 0),
        by_state.get("published", 0),
        by_state.get("refused", 0),
        by_state.get("parked", 0),
    )


async def take_lease(tx: Tx, name: str, holder: str, now: datetime, seconds: float) -> bool:
    """Hold ``name`` for ``seconds`` unless another holder's lease is still running (one
    statement, so two replicas racing for it cannot both win)."""
    until = iso(datetime.fromtimestamp(now.timestamp() + seconds, UTC))
    rows = await tx.fetch(
        "INSERT INTO bom_lease (name, holder, expires_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
        " expires_at = excluded.expires_at"
        " WHERE bom_lease.holder = excluded.holder OR bom_lease.expires_at <= ?"
        " RETURNING holder",
        name,
        holder,
        until,
        iso(now),
    )
    return bool(rows)


async def drop_lease(tx: Tx, name: str, holder: str) -> None:
    await tx.execute("DELETE FROM bom_lease WHERE name = ? AND holder = ?", name, holder)
