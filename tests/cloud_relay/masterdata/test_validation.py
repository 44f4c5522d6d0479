"""Every validation rule, against the sandbox: each failure names the revision, the line or
operation and the field, and nothing reaches Odoo or the store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from cloud_relay.masterdata import service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.service import BomInvalid
from cloud_relay.masterdata.store import BomRejected
from tests.cloud_relay.masterdata.harness import BomRig, bom_rig, three_levels
from wire.bom import BomSubmission, parse_submission


@pytest.fixture(params=[18, 19], ids=lambda v: f"odoo{v}")
async def rig(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BomRig]:
    async with bom_rig(tmp_path, request.param) as made:
        yield made


def one(**changes: Any) -> BomSubmission:
    revision: dict[str, Any] = {
        "product": "HSG-10",
        "revision": "B",
        "status": "released",
        "unit": "Units",
        "operations": [{"name": "Machine", "workcenter": "CNC", "duration_minutes": 20}],
        "lines": [
            {"product": "CAST-10", "quantity": 2.5, "unit": "kg", "operation": "Machine"},
            {"product": "BOLT-M8", "quantity": 8, "unit": "Units"},
        ],
    }
    revision.update(changes)
    return parse_submission({"revisions": [revision]})


def line(**changes: Any) -> list[dict[str, Any]]:
    return [{"product": "CAST-10", "quantity": 2.5, "unit": "kg", **changes}]


CASES: list[tuple[str, BomSubmission, str, str]] = [
    ("status", one(status="in_work"), "/revisions/0/status", "not a released status"),
    ("product", one(product="NOPE"), "/revisions/0/product", "no product 'NOPE'"),
    ("component", one(lines=line(product="NOPE")), "/revisions/0/lines/0/product", "no product"),
    ("unit", one(lines=line(unit="furlong")), "/revisions/0/lines/0/unit", "does not exist"),
    ("kind", one(lines=line(unit="Units")), "/revisions/0/lines/0/unit", "not of the same kind"),
    ("bom unit", one(unit="kg"), "/revisions/0/unit", "not of the same kind"),
    (
        "lossy",
        one(lines=line(quantity=15, unit="g")),
        "/revisions/0/lines/0/quantity",
        "would lose precision: 15 g is 0.015 kg, which Odoo rounds to 0.02 kg (rounding 0.01)",
    ),
    (
        "workcenter",
        one(operations=[{"name": "Machine", "workcenter": "Lathe"}]),
        "/revisions/0/operations/0/workcenter",
        "no work centre 'Lathe'",
    ),
    (
        "operation twice",
        one(
            operations=[{"name": "M", "workcenter": "CNC"}, {"name": "M", "workcenter": "CNC"}],
            lines=line(),
        ),
        "/revisions/0/operations/1/name",
        "appears twice",
    ),
    ("operation", one(lines=line(operation="Weld")), "/revisions/0/lines/0/operation", "Weld"),
    ("company", one(plants=[{"company": "Nope Ltd"}]), "/revisions/0/plants/0/company", "Nope"),
    ("warehouse", one(plants=[{"warehouse": "XX"}]), "/revisions/0/plants/0/warehouse", "XX"),
    (
        "operation type",
        one(plants=[{"operation_type": "Smelting"}]),
        "/revisions/0/plants/0/operation_type",
        "Smelting",
    ),
    (
        "two plants",
        one(plants=[{"warehouse": "WH"}, {"warehouse": "WH"}]),
        "/revisions/0/plants/1",
        "one revision per plant",
    ),
    (
        "itself",
        one(lines=line(product="HSG-10", unit="Units")),
        "/revisions/0/lines/0/product",
        "itself",
    ),
    (
        "sub-assembly",
        one(lines=line(product="BOLT-M8", unit="Units", revision="Q")),
        "/revisions/0/lines/0/revision",
        "neither in this submission nor submitted before",
    ),
]


@pytest.mark.parametrize(
    ("name", "submission", "location", "text"), CASES, ids=[c[0] for c in CASES]
)
async def test_rule(
    rig: BomRig, name: str, submission: BomSubmission, location: str, text: str
) -> None:
    with pytest.raises(BomInvalid) as caught:
        await service.submit(rig.store, rig.odoo, rig.config, submission, by="alice", via="cli")
    problems = caught.value.problems
    assert [p.location for p in problems] == [location], problems
    assert text in problems[0].message
    assert " rev B" in problems[0].label
    assert await rig.boms("HSG-10") == []
    assert await rig.store.run(lambda tx: s.list_submissions(tx, 10)) == []


async def test_a_cycle_at_any_depth_is_refused(rig: BomRig) -> None:
    a = {
        "product": "HSG-10",
        "revision": "B",
        "status": "released",
        "unit": "Units",
        "lines": [{"product": "SEAL-KIT", "quantity": 1, "unit": "Units", "revision": "A"}],
    }
    b = {
        "product": "SEAL-KIT",
        "revision": "A",
        "status": "released",
        "unit": "Units",
        "lines": [{"product": "GB-100", "quantity": 1, "unit": "Units", "revision": "C"}],
    }
    c = {
        "product": "GB-100",
        "revision": "C",
        "status": "released",
        "unit": "Units",
        "lines": [{"product": "HSG-10", "quantity": 1, "unit": "Units", "revision": "B"}],
    }
    with pytest.raises(BomInvalid) as caught:
        await service.submit(
            rig.store,
            rig.odoo,
            rig.config,
            parse_submission({"revisions": [a, b, c]}),
            by="alice",
            via="cli",
        )
    assert "cycle HSG-10 -> SEAL-KIT -> GB-100 -> HSG-10" in str(caught.value)


async def test_every_problem_is_reported_at_once(rig: BomRig) -> None:
    bad = one(status="draft", lines=line(unit="Units", operation="Weld"))
    with pytest.raises(BomInvalid) as caught:
        await service.submit(rig.store, rig.odoo, rig.config, bad, by="alice", via="cli")
    assert {p.location for p in caught.value.problems} == {
        "/revisions/0/status",
        "/revisions/0/lines/0/operation",
        "/revisions/0/lines/0/unit",
    }


async def test_released_statuses_are_configurable(tmp_path: Path) -> None:
    async with bom_rig(tmp_path, 18, BomConfig(released_statuses=("Released", "Frozen"))) as rig:
        outcome = await service.submit(
            rig.store, rig.odoo, rig.config, one(status="frozen"), by="a", via="cli"
        )
        assert outcome.created


async def test_resubmission_is_a_no_op_and_other_content_is_refused(rig: BomRig) -> None:
    first = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels(), by="alice", via="cli"
    )
    again = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels(), by="carol", via="api"
    )
    assert (again.id, again.created) == (first.id, False)
    with pytest.raises(
        BomRejected, match=r"GB-100 revision C: already submitted .* with other content"
    ):
        await service.submit(
            rig.store, rig.odoo, rig.config, three_levels(quantity=3), by="a", via="cli"
        )
    assert len(await rig.store.run(lambda tx: s.list_submissions(tx, 10))) == 1


async def test_an_older_revision_is_out_of_sequence(rig: BomRig) -> None:
    await service.submit(rig.store, rig.odoo, rig.config, three_levels("D"), by="alice", via="cli")
    with pytest.raises(BomRejected, match="GB-100 revision C: out of sequence, revision D"):
        await service.submit(
            rig.store, rig.odoo, rig.config, three_levels("C"), by="alice", via="cli"
        )


async def test_four_eyes(rig: BomRig) -> None:
    outcome = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels(), by="alice", via="cli"
    )
    with pytest.raises(BomRejected, match="another person must approve it"):
        await service.approve(rig.store, rig.config, outcome.id, by="Alice", reason=None)
    row = await rig.store.run(lambda tx: s.get_submission(tx, outcome.id))
    assert row is not None and row.state == "pending"
    await service.approve(rig.store, rig.config, outcome.id, by="bob", reason="ok")
    audit = await rig.store.run(lambda tx: s.audit_log(tx, 10))
    assert [(a.action, a.actor) for a in audit] == [("approve", "bob"), ("submit", "alice")]


async def test_refused_revision_may_be_corrected(rig: BomRig) -> None:
    outcome = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels(), by="alice", via="cli"
    )
    await service.refuse(rig.store, outcome.id, by="bob", reason="wrong oil")
    again = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels(quantity=2), by="alice", via="cli"
    )
    assert again.created and again.id != outcome.id
