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
from cloud_relay.masterdata.catalog import boms_of_templates, read_boms
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


async def _drifts(
    store: BomStore, publisher: Publisher, plans: Sequence[PlannedBom], ours: set[int]
) -> list[str]:
    """Why products' BOMs in Odoo differ from the relay's last publication (empty: none do).
    ``ours`` are the BOMs of this submission already in Odoo: one of them being picked means a
    crash came after making it current, not a hand edit."""

    async def last_published(tx: Tx) -> dict[str, tuple[str, int, str | None, int]]:
        found: dict[str, tuple[str, int, str | None, int]] = {}
        for plan in plans:
            product = plan.revision.product
            current = await s.current_of(tx, product)
            if current is None or current.revision == plan.revision.revision:
                continue
            row = await s.revision(tx, product, current.revision)
            if row is not None and row.odoo_bom_id is not None:
                bom = row.odoo_bom_id
                found[product] = (current.revision, bom, row.fingerprint, plan.template_id)
        return found

    last = await store.run(last_published)
    if not last:
        return []
    publisher.calls += 6
    boms = await read_boms(publisher.odoo, [bom for _, bom, _, _ in last.values()])
    picked = await boms_of_templates(publisher.odoo, [t for _, _, _, t in last.values()])
    reasons = []
    for product, (revision, bom_id, fingerprint, template) in last.items():
        bom = boms.get(bom_id)
        first = next((b for b in picked if b.template_id == template and b.active), None)
        if bom is None:
            reasons.append(f"mrp.bom {bom_id} of {product} revision {revision} was deleted")
        elif bom.fingerprint() != fingerprint:
            reasons.append(
                f"mrp.bom {bom.id} of {product} revision {revision} was changed in Odoo after "
                "it was published (lines or operations differ)"
            )
        elif first is not None and first.id != bom.id and first.id not in ours:
            reasons.append(
                f"Odoo picks mrp.bom {first.id} ({first.code or 'no reference'}) for {product}, "
                f"not the published revision {revision} (mrp.bom {bom.id})"
            )
    return reasons


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
        await _publish_plans(store, publisher, row, result.plans, clock)
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


async def _publish_plans(
    store: BomStore,
    publisher: Publisher,
    row: Submission,
    plans: Sequence[PlannedBom],
    clock: Clock,
) -> None:
    async def unpublished(tx: Tx) -> list[PlannedBom]:
        out = []
        for plan in plans:
            rev = plan.revision
            stored = await s.revision(tx, rev.product, rev.revision)
            if stored is not None and stored.submission_id != row.id and stored.published_at:
                continue  # a sub-assembly published by an earlier submission
            out.append(plan)
        return out

    todo = await store.run(unpublished)
    if not todo:
        return
    if not row.force:
        ours = set((await publisher.find_all(todo)).values())
        reasons = await _drifts(store, publisher, todo, ours)
        if reasons:
            raise DriftError(
                f"{'; '.join(reasons)}; not overwritten. Compare it in Odoo, then `cloud-relay "
                f"bom retry {row.id} --by NAME --reason ...` to publish anyway, or `cloud-relay "
                f"bom refuse {row.id} --by NAME --reason ...`"
            )
    published = await publisher.publish(todo)
    now = clock()

    async def loaded(tx: Tx) -> None:
        for plan, done in zip(todo, published, strict=True):
            rev = plan.revision
            await s.mark_revision_published(
                tx, rev.product, rev.revision, done.bom_id, done.fingerprint, now
            )

    await store.run(loaded)
    await publisher.make_current(
        [(p.template_id, d.bom_id) for p, d in zip(todo, published, strict=True)]
    )
    actor = row.decided_by or RELAY_ACTOR
    at = clock()

    async def current(tx: Tx) -> None:
        for plan in todo:
            await s.set_current(tx, plan.revision.product, plan.revision.revision, at, actor, None)

    await store.run(current)


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
    await publisher.make_current([(bom.template_id, bom.id)])

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
