"""Publishing an approved submission bottom-up, rolling a product back, and its history.

Each step is recorded in the store as soon as Odoo has done it, and each is safe to repeat, so
a relay killed at any point resumes the submission (state ``publishing``) where it stood. A
product whose BOM was changed by hand in Odoo since the relay published it is not touched: the
submission is parked with the reason until a person retries or refuses it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud_relay.errors import TransientError
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.factory import BomStore
from cloud_relay.masterdata.publish import Publisher
from cloud_relay.masterdata.service import Clock, check, submission_of, utc_now
from cloud_relay.masterdata.store import BomRejected, CurrentEntry, Submission, Tx
from cloud_relay.masterdata.validate import PlannedBom
from cloud_relay.odoo.client import OdooClient

log = logging.getLogger(__name__)

RELAY_ACTOR = "relay"


class DriftError(BomRejected):
    """The product's BOM in Odoo is not what the relay published last."""


async def _drift(store: BomStore, publisher: Publisher, plan: PlannedBom) -> str | None:
    """Why the product's BOM in Odoo differs from the relay's last publication, or None."""
    product = plan.revision.product
    current = await store.run(lambda tx: s.current_of(tx, product))
    if current is None:
        return None
    row = await store.run(lambda tx: s.revision(tx, product, current.revision))
    if row is None or row.odoo_bom_id is None:
        return None
    bom = await publisher.read(row.odoo_bom_id)
    if bom is None:
        return f"mrp.bom {row.odoo_bom_id} of {product} revision {current.revision} was deleted"
    if bom.fingerprint() != row.fingerprint:
        return (
            f"mrp.bom {bom.id} of {product} revision {current.revision} was changed in Odoo "
            "after it was published (lines or operations differ)"
        )
    picked = await publisher.picked(plan.template_id)
    if picked is not None and picked.id != bom.id:
        return (
            f"Odoo picks mrp.bom {picked.id} ({picked.code or 'no reference'}) for {product}, "
            f"not the published revision {current.revision} (mrp.bom {bom.id})"
        )
    return None


async def _park(store: BomStore, row: Submission, reason: str, now: datetime) -> None:
    async def work(tx: Tx) -> None:
        await s.set_state(tx, row.id, "parked", now, park_reason=reason, parked_at=now)
        await s.audit(
            tx, now, RELAY_ACTOR, "park", row.id, row.top_product, row.top_revision, reason
        )

    await store.run(work)
    log.warning(
        "BOM submission #%d parked: %s",
        row.id,
        reason,
        extra={"submission": row.id, "error": reason},
    )


async def publish_submission(
    store: BomStore,
    odoo: OdooClient,
    config: BomConfig,
    row: Submission,
    *,
    clock: Clock = utc_now,
) -> bool:
    """Publish every revision of ``row`` bottom-up and make each current; True when done.

    Parks the submission (False) on drift, on a rule Odoo's data no longer passes, or on a
    refusal by Odoo; a transient failure is counted and left for the next round.
    """
    publisher = Publisher(odoo, config)
    await store.run(lambda tx: s.set_state(tx, row.id, "publishing", clock()))
    try:
        result = await check(store, odoo, config, submission_of(row))
        if not result.ok:
            reason = "; ".join(str(p) for p in result.problems)
            await _park(store, row, f"no longer valid against Odoo: {reason}", clock())
            return False
        for plan in result.plans:
            await _publish_one(store, publisher, row, plan, clock)
    except TransientError as exc:
        error = str(exc)
        await store.run(lambda tx: s.count_attempt(tx, row.id, error))
        log.warning("BOM submission #%d: will retry: %s", row.id, error)
        return False
    except BomRejected as exc:
        await _park(store, row, str(exc), clock())
        return False

    async def done(tx: Tx) -> None:
        now = clock()
        await s.set_state(tx, row.id, "published", now, published_at=now, last_error=None)
        await s.audit(
            tx, now, RELAY_ACTOR, "publish", row.id, row.top_product, row.top_revision, None
        )

    await store.run(done)
    log.info("BOM submission #%d published (%d Odoo calls)", row.id, publisher.calls)
    return True


async def _publish_one(
    store: BomStore, publisher: Publisher, row: Submission, plan: PlannedBom, clock: Clock
) -> None:
    rev = plan.revision
    stored = await store.run(lambda tx: s.revision(tx, rev.product, rev.revision))
    if stored is not None and stored.submission_id != row.id and stored.published_at is not None:
        return  # a sub-assembly published by an earlier submission
    current = await store.run(lambda tx: s.current_of(tx, rev.product))
    if not row.force and (current is None or current.revision != rev.revision):
        reason = await _drift(store, publisher, plan)
        if reason is not None:
            raise DriftError(
                f"{reason}; not overwritten. Compare it in Odoo, then `cloud-relay bom retry "
                f"{row.id} --by NAME --reason ...` to publish {rev.product} revision "
                f"{rev.revision} anyway, or `cloud-relay bom refuse {row.id}`"
            )
    published = await publisher.publish(plan)
    now = clock()
    await store.run(
        lambda tx: s.mark_revision_published(
            tx, rev.product, rev.revision, published.bom_id, published.fingerprint, now
        )
    )
    await publisher.make_current(plan.template_id, published.bom_id)
    actor = row.decided_by or RELAY_ACTOR
    await store.run(lambda tx: s.set_current(tx, rev.product, rev.revision, clock(), actor, None))


async def rollback(
    store: BomStore,
    odoo: OdooClient,
    config: BomConfig,
    product: str,
    to_revision: str,
    *,
    by: str,
    reason: str,
    clock: Clock = utc_now,
) -> None:
    """Make an earlier published revision the one Odoo picks again."""
    row = await store.run(lambda tx: s.revision(tx, product, to_revision))
    if row is None or row.odoo_bom_id is None:
        raise BomRejected(f"{product} revision {to_revision} was never published")
    publisher = Publisher(odoo, config)
    bom = await publisher.read(row.odoo_bom_id)
    if bom is None:
        raise BomRejected(f"mrp.bom {row.odoo_bom_id} of {product} {to_revision} is gone from Odoo")
    await publisher.make_current(bom.template_id, bom.id)

    async def work(tx: Tx) -> None:
        now = clock()
        await s.set_current(tx, product, to_revision, now, by, reason)
        await s.audit(tx, now, by, "rollback", None, product, to_revision, reason)

    await store.run(work)


@dataclass(frozen=True, slots=True)
class History:
    product: str
    current: tuple[CurrentEntry, ...]
    """Which revision became current when, oldest first."""
    orders: tuple[tuple[str, str, str, str], ...]
    """(MO name, revision, state, created at) of manufacturing orders on published BOMs."""

    def current_on(self, at: datetime) -> str | None:
        found = None
        for entry in self.current:
            if entry.since <= at:
                found = entry.revision
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "product": self.product,
            "current": [
                {
                    "revision": e.revision,
                    "since": e.since.isoformat(),
                    "by": e.actor,
                    "reason": e.reason,
                }
                for e in self.current
            ],
            "orders": [
                {"order": o, "revision": r, "state": st, "created_at": c}
                for o, r, st, c in self.orders
            ],
        }


async def history(store: BomStore, odoo: OdooClient | None, product: str) -> History:
    """The product's current-revision log and, with Odoo, the MOs made on each revision."""
    log_entries = await store.run(lambda tx: s.current_log(tx, product))
    revisions = await store.run(lambda tx: s.revisions_of(tx, product))
    by_bom = {r.odoo_bom_id: r.revision for r in revisions if r.odoo_bom_id is not None}
    orders: Sequence[tuple[str, str, str, str]] = ()
    if odoo is not None and by_bom:
        rows = await odoo.search_read(
            "mrp.production",
            [["bom_id", "in", sorted(by_bom)]],
            ["name", "bom_id", "state", "create_date"],
            order="id",
        )
        orders = tuple(
            (
                str(r["name"]),
                by_bom.get(int(r["bom_id"][0]), "?"),
                str(r["state"]),
                str(r["create_date"]),
            )
            for r in rows
        )
    return History(product, tuple(log_entries), tuple(orders))
