"""Publishing over time against the sandbox: effective dates kept by the job, rollback, a BOM
edited by hand in Odoo parked instead of overwritten, history with the MOs of each revision,
and the activation by sequence."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cloud_relay.masterdata import flow, service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.flow import publish_submission
from cloud_relay.masterdata.job import BomPublishingJob
from cloud_relay.masterdata.publish import Publisher
from cloud_relay.odoo.config import OdooConfig
from tests.cloud_relay.masterdata.harness import BomRig, bom_rig, three_levels


@pytest.fixture(params=[18, 19], ids=lambda v: f"odoo{v}")
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BomRig]:
    async with bom_rig(tmp_path, request.param) as made:
        yield made


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def job_for(rig: BomRig, clock: Clock, config: BomConfig | None = None) -> BomPublishingJob:
    odoo = OdooConfig(
        url=str(rig.x.http.base_url),
        database=rig.x.database,
        login="admin",
        api_key=SecretStr(rig.x.secret),
    )
    return BomPublishingJob(rig.store, odoo, config or rig.config, clock=clock)


async def state(rig: BomRig, submission_id: int) -> str:
    row = await rig.store.run(lambda tx: s.get_submission(tx, submission_id))
    assert row is not None
    return row.state


async def publish(rig: BomRig, revision: str, clock: Clock, **changes: Any) -> int:
    outcome = await service.submit(
        rig.store,
        rig.odoo,
        rig.config,
        three_levels(revision, **changes),
        by="alice",
        via="cli",
        clock=clock,
    )
    await service.approve(rig.store, rig.config, outcome.id, by="bob", reason=None, clock=clock)
    job = job_for(rig, clock)
    try:
        await job.run_once()
    finally:
        await job.close()
    return outcome.id


async def test_effective_date_waits_for_its_time(rig: BomRig) -> None:
    clock = Clock()
    at = clock.now + timedelta(days=2)
    outcome = await service.submit(
        rig.store,
        rig.odoo,
        rig.config,
        three_levels(effective_at=at.isoformat()),
        by="alice",
        via="cli",
    )
    row = await service.approve(
        rig.store, rig.config, outcome.id, by="bob", reason=None, clock=clock
    )
    assert row.publish_after == at.replace(microsecond=0)
    job = job_for(rig, clock)
    try:
        assert await job.run_once() == 0
        assert await state(rig, outcome.id) == "approved"
        assert await rig.boms("GB-100") == []
        clock.now = at + timedelta(seconds=1)
        assert await job.run_once() == 1
    finally:
        await job.close()
    assert await state(rig, outcome.id) == "published"
    assert await rig.picked("GB-100") == "C"


async def test_rollback_makes_the_earlier_revision_current(rig: BomRig) -> None:
    clock = Clock()
    await publish(rig, "C", clock)
    clock.now += timedelta(hours=1)
    await publish(rig, "D", clock, quantity=2)
    assert await rig.picked("GB-100") == "D"
    clock.now += timedelta(hours=1)
    await flow.rollback(
        rig.store, rig.odoo, rig.config, "GB-100", "C", by="carol", reason="D leaks", clock=clock
    )
    assert await rig.picked("GB-100") == "C"
    assert sorted((b["code"], b["active"]) for b in await rig.boms("GB-100")) == [
        ("C", True),
        ("D", False),
    ]
    found = await flow.history(rig.store, rig.odoo, "GB-100")
    assert [(e.revision, e.actor) for e in found.current] == [
        ("C", "bob"),
        ("D", "bob"),
        ("C", "carol"),
    ]
    assert found.current_on(clock.now - timedelta(minutes=30)) == "D"
    # The MOs picked() made after publishing D and after the rollback.
    assert [revision for _, revision, _, _ in found.orders] == ["D", "C"]
    audit = await rig.store.run(lambda tx: s.audit_log(tx, 1))
    assert (audit[0].action, audit[0].actor, audit[0].reason) == ("rollback", "carol", "D leaks")
    with pytest.raises(s.BomRejected, match="never published"):
        await flow.rollback(rig.store, rig.odoo, rig.config, "GB-100", "Z", by="c", reason="x")


async def test_history_names_the_revision_of_each_mo(rig: BomRig) -> None:
    clock = Clock()
    await publish(rig, "C", clock)
    await rig.picked("GB-100")
    await publish(rig, "D", clock, quantity=2)
    await rig.picked("GB-100")
    found = await flow.history(rig.store, rig.odoo, "GB-100")
    assert [revision for _, revision, _, _ in found.orders] == ["C", "D"]


async def test_a_hand_edit_in_odoo_parks_the_next_publish(rig: BomRig) -> None:
    clock = Clock()
    await publish(rig, "C", clock)
    bom = (await rig.boms("GB-100"))[0]
    line = bom["bom_line_ids"][0]
    await rig.x("mrp.bom", "write", [bom["id"]], {"bom_line_ids": [[1, line, {"product_qty": 5}]]})
    second = await publish(rig, "D", clock, quantity=2)
    assert await state(rig, second) == "parked"
    row = await rig.store.run(lambda tx: s.get_submission(tx, second))
    assert row is not None and row.park_reason is not None
    assert "was changed in Odoo after it was published" in row.park_reason
    assert f"cloud-relay bom retry {second}" in row.park_reason
    # The hand edit is kept, and still what production uses.
    assert [(b["code"], b["active"]) for b in await rig.boms("GB-100")] == [("C", True)]
    counts = await rig.store.run(s.counts)
    assert counts.parked == 1
    # A person decides to publish anyway.
    await service.retry(rig.store, second, by="bob", reason="hand edit was a trial", clock=clock)
    job = job_for(rig, clock)
    try:
        assert await job.run_once() == 1
    finally:
        await job.close()
    assert await rig.picked("GB-100") == "D"


async def test_activation_by_sequence_leaves_the_previous_active(tmp_path: Path) -> None:
    async with bom_rig(tmp_path, 18, BomConfig(activation="sequence")) as rig:
        clock = Clock()
        await publish(rig, "C", clock)
        await publish(rig, "D", clock, quantity=2)
        boms = {b["code"]: b for b in await rig.boms("GB-100")}
        assert boms["C"]["active"] and boms["D"]["active"]
        assert boms["D"]["sequence"] < boms["C"]["sequence"]
        assert await rig.picked("GB-100") == "D"


async def test_a_crash_after_switching_in_odoo_is_not_taken_for_a_hand_edit(rig: BomRig) -> None:
    clock = Clock()
    await publish(rig, "C", clock)
    outcome = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels("D", quantity=2), by="alice", via="cli"
    )
    row = await service.approve(rig.store, rig.config, outcome.id, by="bob", reason=None)
    # The relay made D current in Odoo, then died before recording it.
    result = await service.check(rig.store, rig.odoo, rig.config, service.submission_of(row))
    publisher = Publisher(rig.odoo, rig.config)
    done = await publisher.publish(result.plans)
    await publisher.make_current(
        [(p.template_id, d.bom_id) for p, d in zip(result.plans, done, strict=True)]
    )
    await rig.store.run(lambda tx: s.set_state(tx, outcome.id, "publishing", clock()))
    assert await publish_submission(rig.store, rig.odoo, rig.config, row)
    assert await rig.picked("GB-100") == "D"
    assert [e.revision for e in await rig.store.run(lambda tx: s.current_log(tx, "GB-100"))] == [
        "C",
        "D",
    ]
