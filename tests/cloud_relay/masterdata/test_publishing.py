"""Submit, approve and publish against the sandbox (18 and 19): a three-level BOM with a kit
and a unit conversion, bottom-up, the new revision current, earlier ones archived."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_relay.masterdata import service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.flow import publish_submission
from tests.cloud_relay.masterdata.harness import BomRig, bom_rig, three_levels


@pytest.fixture(params=[18, 19], ids=lambda v: f"odoo{v}")
async def rig(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with bom_rig(tmp_path, request.param) as made:
        yield made


async def approve_and_publish(rig: BomRig, submission_id: int) -> None:
    await service.approve(rig.store, rig.config, submission_id, by="bob", reason="checked")
    row = await rig.store.run(lambda tx: s.get_submission(tx, submission_id))
    assert row is not None
    assert await publish_submission(rig.store, rig.odoo, rig.config, row)


async def test_three_levels_published_bottom_up(rig: BomRig) -> None:
    outcome = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels(), by="alice", via="cli"
    )
    assert outcome.created
    await approve_and_publish(rig, outcome.id)
    gearbox = await rig.boms("GB-100")
    assert [
        (b["code"], b["active"], len(b["bom_line_ids"]), len(b["operation_ids"])) for b in gearbox
    ] == [("C", True, 3, 2)]
    kit = await rig.boms("SEAL-KIT")
    assert [(b["code"], b["type"]) for b in kit] == [("A", "phantom")]
    housing = (await rig.boms("HSG-10"))[0]
    lines = await rig.x(
        "mrp.bom.line",
        "read",
        housing["bom_line_ids"],
        fields=["product_qty", "product_uom_id", "operation_id"],
    )
    # 2500 g of a product kept in kg is published as 2.5 kg, consumed in "Machine".
    assert sorted((line["product_qty"], line["product_uom_id"][1]) for line in lines) == [
        (2.5, "kg"),
        (8.0, "Units"),
    ]
    assert all(line["operation_id"] and line["operation_id"][1] == "Machine" for line in lines)
    assert await rig.picked("GB-100") == "C"
    # As on real 18.0 and 19.0: the next MO explodes the kit into its components, each
    # consumed in the operation of the kit's line.
    mo = await rig.x(
        "mrp.production", "create", {"product_id": rig.products["GB-100"], "product_qty": 2}
    )
    assert await rig.x("mrp.production", "action_confirm", [mo]) is True
    moves = await rig.x(
        "stock.move",
        "search_read",
        [["raw_material_production_id", "=", mo]],
        fields=["product_id", "product_uom_qty", "product_uom", "operation_id"],
    )
    assert sorted(
        (m["product_id"][1], m["product_uom_qty"], m["product_uom"][1], m["operation_id"][1])
        for m in moves
    ) == [
        ("[GREASE] GREASE", 0.04, "kg", "Assemble"),
        ("[HSG-10] HSG-10", 2.0, "Units", "Assemble"),
        ("[OIL] OIL", 0.8, "L", "Test"),
        ("[ORING-30] ORING-30", 4.0, "Units", "Assemble"),
    ]
    history = await rig.store.run(lambda tx: s.current_log(tx, "GB-100"))
    assert [e.revision for e in history] == ["C"]


async def test_next_revision_becomes_current_previous_archived(rig: BomRig) -> None:
    first = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels("C"), by="alice", via="cli"
    )
    await approve_and_publish(rig, first.id)
    second = await service.submit(
        rig.store, rig.odoo, rig.config, three_levels("D", quantity=2), by="alice", via="cli"
    )
    assert second.created and second.id != first.id
    await approve_and_publish(rig, second.id)
    boms = await rig.boms("GB-100")
    assert sorted((b["code"], b["active"]) for b in boms) == [("C", False), ("D", True)]
    assert await rig.picked("GB-100") == "D"
    # The sub-assemblies were reused, not published twice.
    assert len(await rig.boms("HSG-10")) == 1
