"""``POST /v1/boms`` signed with a publisher key, and key roles: a gateway key cannot submit
BOMs and a publisher key cannot send event batches. Served by uvicorn, against the sandbox."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from cloud_relay.config import RelaySettings, StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.masterdata.admin import BomAdminPage
from cloud_relay.masterdata.api import BomCollector, BomEndpoint, install_bom_api
from cloud_relay.masterdata.job import BomPublishingJob
from cloud_relay.metrics import RelayMetrics
from cloud_relay.odoo.config import OdooConfig
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER, serve
from tests.cloud_relay.masterdata.harness import BomRig, bom_rig, three_levels
from tests.cloud_relay.support import Gateway, batch_body, upload
from wire.bom import BOMS_PATH
from wire.keys import generate_private_key
from wire.signing import sign_request


class Api:
    def __init__(
        self, url: str, client: httpx.AsyncClient, inbox: SqliteInbox, rig: BomRig
    ) -> None:
        self.url = url
        self.client = client
        self.inbox = inbox
        self.rig = rig

    async def key(self, name: str, role: str) -> Gateway:
        made = Gateway(name, generate_private_key())
        await self.inbox.add_key(name, made.key_id, made.public_pem, role)
        return made

    async def post(self, who: Gateway, body: bytes) -> httpx.Response:
        url = self.url + BOMS_PATH
        headers = {"Content-Type": "application/json"}
        headers.update(sign_request("POST", url, body, who.private_key))
        return await self.client.post(url, content=body, headers=headers)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with bom_rig(tmp_path, 18) as rig:
        inbox = SqliteInbox(tmp_path / "relay.db")
        await inbox.open()
        odoo = OdooConfig(
            url=str(rig.x.http.base_url),
            database=rig.x.database,
            login="admin",
            api_key=SecretStr(rig.x.secret),
        )
        settings = RelaySettings(
            server=TEST_SERVER, store=StoreConfig(url=f"sqlite:///{tmp_path}/relay.db"), odoo=odoo
        )
        metrics = RelayMetrics()
        app = build_app(inbox, TEST_SERVER, admin_token=None, metrics=metrics)
        install_bom_api(app, BomEndpoint(inbox, rig.store, settings, metrics))
        BomAdminPage(rig.store, rig.config, ADMIN_TOKEN).install(app)
        job = BomPublishingJob(rig.store, odoo, rig.config)
        metrics.registry.register(BomCollector(job.stats))
        try:
            async with serve(app) as url, httpx.AsyncClient(timeout=30) as client:
                yield Api(url, client, inbox, rig)
        finally:
            await inbox.close()


async def test_a_publisher_submits_and_resubmits(api: Api) -> None:
    plm = await api.key("plm-1", "publisher")
    body = three_levels().encode()
    first = await api.post(plm, body)
    assert (first.status_code, first.json()["created"]) == (201, True), first.text
    again = await api.post(plm, body)
    assert again.status_code == 200 and again.json() == {"id": first.json()["id"], "created": False}
    other = await api.post(plm, three_levels(quantity=5).encode())
    assert other.status_code == 409 and "with other content" in other.json()["error"]


async def test_validation_problems_come_back_with_their_locations(api: Api) -> None:
    plm = await api.key("plm-1", "publisher")
    wire = three_levels().to_wire()
    wire["revisions"][2]["lines"][0]["unit"] = "Units"  # CAST-10 is kept in kg
    answer = await api.post(plm, json.dumps(wire).encode())
    assert answer.status_code == 422
    assert [p["location"] for p in answer.json()["problems"]] == ["/revisions/2/lines/0/unit"]
    bad = await api.post(plm, b'{"revisions": []}')
    assert bad.status_code == 422 and bad.json()["location"] == "/revisions"


async def test_roles_keep_keys_to_their_endpoint(api: Api) -> None:
    gateway = await api.key("gw-1", "gateway")
    plm = await api.key("plm-1", "publisher")
    refused = await api.post(gateway, three_levels().encode())
    assert refused.status_code == 403 and "gateway key" in refused.json()["error"]
    batch = await upload(api.client, api.url, plm, batch_body("plm-1", 1, 1))
    assert batch.status_code == 403 and "publisher key" in batch.json()["error"], batch.text
    accepted = await upload(api.client, api.url, gateway, batch_body("gw-1", 1, 1))
    assert accepted.status_code == 200
    stranger = Gateway("plm-2", generate_private_key())
    assert (await api.post(stranger, three_levels().encode())).status_code == 403


async def test_metrics_show_the_bom_figures(api: Api) -> None:
    text = (await api.client.get(api.url + "/metrics")).text
    names = {f.name for f in text_string_to_metric_families(text)}
    assert {
        "cloud_relay_bom_pending",
        "cloud_relay_bom_parked",
        "cloud_relay_bom_published",
    } <= names


async def test_admin_page_lists_and_approves_with_csrf(api: Api) -> None:
    plm = await api.key("plm-1", "publisher")
    submitted = (await api.post(plm, three_levels().encode())).json()["id"]
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    page = await api.client.get(api.url + "/admin/boms", headers=auth)
    assert page.status_code == 200 and "GB-100" in page.text and "pending" in page.text
    csrf = page.text.split("name='csrf' value='")[1].split("'")[0]
    url = f"{api.url}/admin/boms/{submitted}/approve"
    form = {"csrf": "wrong", "actor": "lee", "reason": "ok"}
    assert (await api.client.post(url, data=form, headers=auth)).status_code == 403
    cross = {**auth, "Sec-Fetch-Site": "cross-site"}
    assert (
        await api.client.post(url, data={**form, "csrf": csrf}, headers=cross)
    ).status_code == 403
    self_approval = {**form, "csrf": csrf, "actor": "plm-1"}
    refused = await api.client.post(url, data=self_approval, headers=auth)
    assert refused.status_code == 409 and "four-eyes" in refused.text
    done = await api.client.post(
        url, data={**form, "csrf": csrf}, headers=auth, follow_redirects=False
    )
    assert done.status_code == 303
    page = await api.client.get(api.url + "/admin/boms", headers=auth)
    assert "approved" in page.text and "lee" in page.text
    assert (
        await api.client.get(api.url + "/admin/boms", follow_redirects=False)
    ).status_code == 303
