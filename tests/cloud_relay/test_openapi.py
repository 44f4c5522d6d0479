"""The served OpenAPI document: complete for the batch route, and honoured (schemathesis)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import httpx
import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.posting.factory import open_posting_store
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER, Relay, serve
from tests.cloud_relay.support import Gateway, batch_body, upload
from wire.keys import write_keypair

ROOT = Path(__file__).resolve().parents[2]
#: Examples per operation and phase; bounded so the run stays well under a minute.
MAX_EXAMPLES = int(os.environ.get("RELAY_SCHEMATHESIS_EXAMPLES", "25"))
SEED = os.environ.get("RELAY_SCHEMATHESIS_SEED", "20250301")


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_batch_route_declares_every_answer(relay: Relay) -> None:
    document = (await relay.client.get(relay.url + "/openapi.json")).json()
    batches = document["paths"]["/v1/batches"]["post"]
    assert set(batches["responses"]) == {"200", "401", "403", "409", "413", "415", "422", "503"}
    assert "Retry-After" in batches["responses"]["503"]["headers"]
    assert batches["requestBody"]["required"] is True
    headers = {p["name"] for p in batches["parameters"] if p["in"] == "header"}
    assert headers == {"Signature", "Signature-Input", "Content-Digest", "Content-Encoding"}
    for path in ("/v1/gateways", "/v1/gateways/{gateway_id}", "/v1/gateways/{gateway_id}/events"):
        assert {"200", "401", "503"} <= set(document["paths"][path]["get"]["responses"])
    assert "HTTPBearer" in document["components"]["securitySchemes"]


async def test_schemathesis_finds_no_server_error_or_schema_breach(tmp_path: Path) -> None:
    private_key = write_keypair(tmp_path / "gateway.pem")
    gateway = Gateway("line-1", private_key)
    config = StoreConfig(url=f"sqlite:///{tmp_path}/inbox.db")
    store = open_inbox(config)
    await store.open()
    posting = open_posting_store(config)
    await posting.open()
    try:
        await store.add_key(gateway.gateway_id, gateway.key_id, gateway.public_pem)
        app = build_app(store, TEST_SERVER, admin_token=ADMIN_TOKEN, posting_store=posting)
        async with serve(app) as url, httpx.AsyncClient() as client:
            stored = await upload(client, url, gateway, batch_body("line-1", 1, 3))
            assert stored.status_code == 200
            returncode, output = await _schemathesis(url, tmp_path / "gateway.pem", tmp_path)
    finally:
        await posting.close()
        await store.close()
    assert returncode == 0, output
    assert "passed" in output


async def _schemathesis(url: str, key_path: Path, work_dir: Path) -> tuple[int, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.cloud_relay.schemathesis_hooks",
        "RELAY_TEST_SIGNING_KEY": str(key_path),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from schemathesis.cli import schemathesis; schemathesis()",
        "run",
        f"{url}/openapi.json",
        "--header",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        "--generation-database",
        "none",
        "--request-timeout",
        "30",
        "--no-color",
        cwd=work_dir,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=110)
    return process.returncode or 0, output.decode(errors="replace")
