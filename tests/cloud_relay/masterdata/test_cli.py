"""``cloud-relay bom`` as a person runs it: a real process on a config file, against a sandbox."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cloud_relay.odoo.sandbox import running_sandbox
from tests.cloud_relay.masterdata.harness import plant
from tests.cloud_relay.odoo.sandbox.scenario import ADMIN_UID, Rpc

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "config" / "bom-example.csv"


async def cli(config: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cloud_relay",
        "bom",
        *args,
        *(["--config", str(config)] if args[0] != "demo" else []),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def config(tmp_path: Path) -> AsyncIterator[Path]:
    import httpx

    async with running_sandbox(18) as handle, httpx.AsyncClient(base_url=handle.base_url) as http:
        x = Rpc(http, handle.database, ADMIN_UID, handle.info.admin_api_key)
        await plant(x, 18)
        # The example export has 15 g of grease: keep it in grams here.
        grease = await x("product.product", "search", [["default_code", "=", "GREASE"]])
        gram = await x("uom.uom", "search", [["name", "=", "g"]])
        await x("product.product", "write", grease, {"uom_id": gram[0]})
        path = tmp_path / "relay.toml"
        path.write_text(
            f'[store]\nurl = "sqlite:///{tmp_path}/relay.db"\n'
            f'[odoo]\nurl = "{handle.base_url}"\ndatabase = "{handle.database}"\n'
            f'login = "admin"\napi_key = "{handle.info.admin_api_key}"\n'
        )
        yield path


async def test_submit_diff_approve_history(config: Path) -> None:
    code, out, err = await cli(config, "submit", str(EXAMPLE), "--by", "erin")
    assert code == 0, err
    assert out.strip() == "submitted #1 (HSG-10 B, SEAL-KIT A, GB-100 C): waiting for approval"
    code, out, _ = await cli(config, "submit", str(EXAMPLE), "--by", "erin")
    assert (code, out.strip().split(":")[0]) == (
        0,
        "already submitted as #1 (HSG-10 B, SEAL-KIT A, GB-100 C)",
    )
    code, out, _ = await cli(config, "diff", "1")
    assert code == 0 and "GB-100 revision C against no BOM:" in out and "+ OIL 0.4" in out
    code, _, err = await cli(config, "approve", "1", "--by", "erin")
    assert code == 1 and "four-eyes" in err
    code, out, err = await cli(config, "approve", "1", "--by", "lee", "--reason", "ok")
    assert (code, out.strip()) == (0, "approved #1: published"), err
    code, out, _ = await cli(config, "history", "GB-100", "--json")
    data = json.loads(out)
    assert [e["revision"] for e in data["current"]] == ["C"]
    code, out, _ = await cli(config, "list", "--json")
    assert [(r["id"], r["state"]) for r in json.loads(out)] == [(1, "published")]


async def test_a_bad_file_names_its_problems(config: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(EXAMPLE.read_text().replace("0,GB-100,C,1,Units", "0,GB-100,C,1,kg"))
    code, _, err = await cli(config, "submit", str(bad))
    assert code == 1
    assert (
        "/revisions/2/unit: GB-100 rev C, unit: unit 'kg' (Weight) is not of the same kind" in err
    )


async def test_demo(tmp_path: Path) -> None:
    code, out, err = await cli(tmp_path / "unused.toml", "demo")
    assert code == 0, err
    assert "next MO WH/MO/00001 uses BOM 'C: [GB-100] GB-100'" in out
    assert "next MO WH/MO/00002 uses BOM 'D: [GB-100] GB-100'" in out
    assert "WH/MO/00001 was made with revision C" in out
