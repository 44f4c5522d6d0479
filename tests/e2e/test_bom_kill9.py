"""kill -9 of the relay while it publishes BOM revisions into Odoo, and an effective date kept
across a restart.

The sandbox (Odoo 18) runs as its own process and outlives every relay. Revisions 1, 2, 3...
of a three-level BOM (a gearbox with a machined housing and a seal kit) are submitted and
approved one after the other, straight into the relay's SQLite store; the relay's publishing
job publishes each. The relay is SIGKILLed each time the sandbox has answered a random 1 to 45
calls since the relay started, so kills land between any two calls of a publication, until it
was killed ``BOM_KILL9_KILLS`` times (default 10). At the end Odoo must hold exactly one
complete BOM per revision (every line and operation, lines linked to their operations), the
sub-assemblies once, and only the last revision current.

``BOM_KILL9_SEED`` replays a run's kill points.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from cloud_relay.masterdata import service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.sqlite import SqliteBomStore
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from tests.cloud_relay.masterdata.harness import plant, three_levels
from tests.cloud_relay.odoo.sandbox.scenario import Rpc
from tests.cloud_relay.support import free_port
from tests.e2e.odoo_rig import SandboxCredentials, SandboxProcess
from tests.e2e.relay_fleet import ADMIN_TOKEN, RelayProcess, tail

KILLS = int(os.environ.get("BOM_KILL9_KILLS", "10"))
#: Most revisions submitted before giving up on reaching KILLS kills.
MAX_REVISIONS = 60
CALLS_BEFORE_KILL = (1, 45)
STEP_SECONDS = 60.0
POLL_SECONDS = 0.01


class BomRelay(RelayProcess):
    """A relay replica on a SQLite store that publishes BOMs into the sandbox (no writer)."""

    def __init__(self, directory: Path, store: Path, sandbox: SandboxCredentials) -> None:
        super().__init__("bom", directory, f"sqlite:///{store}", free_port())
        self.config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\n'
            f'[store]\nurl = "sqlite:///{store}"\ndurability = "process"\n'
            f'[admin]\ntoken = "{ADMIN_TOKEN}"\n'
            '[log]\nformat = "json"\n'
            f"[odoo]\nurl = {json.dumps(sandbox.url)}\n"
            f"database = {json.dumps(sandbox.database)}\n"
            f"login = {json.dumps(sandbox.admin_login)}\n"
            f"api_key = {json.dumps(sandbox.admin_api_key)}\n"
            "retry_backoff_seconds = 0.01\n"
            "[writer]\nenabled = false\n"
            # A killed replica's lease runs out quickly, so its successor resumes at once.
            "[bom]\npoll_seconds = 0.05\nlease_seconds = 0.5\n"
        )


async def wait_until(
    check: Callable[[], Awaitable[bool]],
    what: Callable[[], Awaitable[str]],
    alive: Callable[[], None],
) -> None:
    deadline = asyncio.get_running_loop().time() + STEP_SECONDS
    while not await check():
        alive()
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out: {await what()}")
        await asyncio.sleep(POLL_SECONDS)


class Rig:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.sandbox = SandboxProcess(tmp_path)
        self.store = SqliteBomStore(tmp_path / "relay.db", durability="process")
        self.config = BomConfig()
        self.relay: BomRelay | None = None
        self.odoo: OdooClient | None = None
        self.x: Rpc | None = None

    async def start(self) -> None:
        creds = await self.sandbox.start()
        self.x = await self.sandbox.admin()
        await plant(self.x, 18)
        await self.store.open()
        self.odoo = await OdooClient.connect(
            OdooConfig(
                url=creds.url,
                database=creds.database,
                login=creds.admin_login,
                api_key=SecretStr(creds.admin_api_key),
            )
        )
        self.relay = BomRelay(self.tmp_path, self.tmp_path / "relay.db", creds)

    async def close(self) -> None:
        if self.relay is not None and self.relay.running:
            await self.relay.stop()
        if self.odoo is not None:
            await self.odoo.close()
        await self.store.close()
        await self.sandbox.stop()

    async def submit_approved(self, revision: str, **changes: Any) -> int:
        assert self.odoo is not None
        outcome = await service.submit(
            self.store,
            self.odoo,
            self.config,
            three_levels(revision, **changes),
            by="alice",
            via="cli",
        )
        await service.approve(self.store, self.config, outcome.id, by="bob", reason=None)
        return outcome.id

    async def state(self, submission_id: int) -> str:
        row = await self.store.run(lambda tx: s.get_submission(tx, submission_id))
        assert row is not None
        return row.state

    def alive(self) -> None:
        self.sandbox.alive()
        relay = self.relay
        assert relay is not None
        assert relay.running, f"relay down:\n{tail(relay.logs[-1])}"

    async def boms(self, code: str) -> list[dict[str, Any]]:
        assert self.x is not None
        product = await self.x(
            "product.product",
            "search_read",
            [["default_code", "=", code]],
            fields=["product_tmpl_id"],
        )
        rows: list[dict[str, Any]] = await self.x(
            "mrp.bom",
            "search_read",
            [["product_tmpl_id", "=", product[0]["product_tmpl_id"][0]]],
            fields=["code", "active", "bom_line_ids", "operation_ids"],
            context={"active_test": False},
        )
        return rows


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_bom_kill9_publishes_each_revision_once(tmp_path: Path) -> None:
    seed = int(os.environ.get("BOM_KILL9_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    where = f"(seed {seed}; logs in {tmp_path})"
    rig = Rig(tmp_path)
    try:
        await rig.start()
        relay = rig.relay
        assert relay is not None and rig.x is not None
        kills, published = 0, []
        for number in range(1, MAX_REVISIONS + 1):
            if kills >= KILLS:
                break
            revision = str(number)
            submission = await rig.submit_approved(revision, quantity=number)
            while True:
                if not relay.running:
                    await relay.start()
                threshold = rng.randint(*CALLS_BEFORE_KILL)
                await rig.sandbox.reset_calls()

                async def reached(submission: int = submission, threshold: int = threshold) -> bool:
                    if await rig.state(submission) == "published":
                        return True
                    return await rig.sandbox.calls_total() >= threshold

                async def what(submission: int = submission) -> str:
                    return f"#{submission} {await rig.state(submission)} {where}"

                await wait_until(reached, what, rig.alive)
                if await rig.state(submission) == "published":
                    published.append(revision)
                    break
                await relay.kill9()
                kills += 1
        assert kills >= KILLS, f"only {kills} kills in {MAX_REVISIONS} revisions {where}"
        print(f"{kills} kills while publishing {len(published)} revisions {where}")
        assert await relay.stop() == 0, tail(relay.logs[-1])

        rows = await rig.store.run(lambda tx: s.list_submissions(tx, 1000))
        assert {r.state for r in rows} == {"published"}, [
            (r.id, r.state, r.park_reason) for r in rows
        ]
        gearbox = await rig.boms("GB-100")
        codes = Counter(b["code"] for b in gearbox)
        assert codes == Counter(published), f"{codes} vs {published} {where}"
        assert [b["code"] for b in gearbox if b["active"]] == [published[-1]], where
        for bom in gearbox:
            assert (len(bom["bom_line_ids"]), len(bom["operation_ids"])) == (3, 2), f"{bom} {where}"
            lines = await rig.x(
                "mrp.bom.line", "read", bom["bom_line_ids"], fields=["operation_id"]
            )
            assert all(line["operation_id"] for line in lines), f"unlinked line in {bom} {where}"
        assert [b["code"] for b in await rig.boms("HSG-10")] == ["B"]
        assert [b["code"] for b in await rig.boms("SEAL-KIT")] == ["A"]
        mo = await rig.x(
            "mrp.production",
            "create",
            {
                "product_id": (
                    await rig.x("product.product", "search", [["default_code", "=", "GB-100"]])
                )[0]
            },
        )
        bom = (await rig.x("mrp.production", "read", [mo], fields=["bom_id"]))[0]["bom_id"]
        assert bom[1].startswith(f"{published[-1]}:"), f"a new MO got {bom} {where}"
    finally:
        await rig.close()


@pytest.mark.timeout(180)
async def test_effective_date_published_after_a_restart(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    try:
        await rig.start()
        relay = rig.relay
        assert relay is not None
        await relay.start()
        at = datetime.now(UTC) + timedelta(seconds=4)
        submission = await rig.submit_approved("1", effective_at=at.isoformat())
        row = await rig.store.run(lambda tx: s.get_submission(tx, submission))
        assert row is not None and row.state == "approved" and row.publish_after is not None
        await relay.kill9()
        killed_at = datetime.now(UTC)
        assert killed_at < row.publish_after, "the relay took the whole wait to be killed"
        await relay.start()

        async def published() -> bool:
            return await rig.state(submission) == "published"

        async def what() -> str:
            return await rig.state(submission)

        await wait_until(published, what, rig.alive)
        row = await rig.store.run(lambda tx: s.get_submission(tx, submission))
        assert row is not None and row.published_at is not None
        assert row.publish_after is not None
        assert row.published_at >= row.publish_after > killed_at
        assert [(b["code"], b["active"]) for b in await rig.boms("GB-100")] == [("1", True)]
    finally:
        await rig.close()
