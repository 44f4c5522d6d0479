"""The admin page's words match how this relay is configured: where the token comes from,
whether it posts to Odoo at all, and how many events it stores beside those it posts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_relay.app import run_relay
from cloud_relay.config import RelaySettings, StoreConfig
from cloud_relay.inbox.factory import open_inbox
from tests.cloud_relay.support import batch_body, free_port, register, upload

TOKEN = "admin-token-for-the-texts-0123456789"
WAIT_SECONDS = 30.0


@asynccontextmanager
async def running_relay(tmp_path: Path, admin: dict[str, Any]) -> AsyncIterator[str]:
    """The relay as ``cloud-relay run`` assembles it, without an ``[odoo]`` section."""
    listen = f"127.0.0.1:{free_port()}"
    settings = RelaySettings.model_validate(
        {
            "server": {"listen": listen},
            "store": {"url": f"sqlite:///{tmp_path}/inbox.db"},
            "admin": admin,
        }
    )
    task = asyncio.create_task(run_relay(settings, install_signal_handlers=False))
    url = f"http://{listen}"
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        async with httpx.AsyncClient() as client:
            while True:
                if task.done():
                    task.result()
                try:
                    await client.get(f"{url}/healthz")
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
        yield url
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("source", ["token", "token_file"])
async def test_the_login_form_names_where_this_relays_token_comes_from(
    tmp_path: Path, source: str
) -> None:
    (tmp_path / "admin-token").write_text(TOKEN + "\n")
    admin = {"token": TOKEN} if source == "token" else {"token_file": tmp_path / "admin-token"}
    async with running_relay(tmp_path, admin) as url, httpx.AsyncClient(base_url=url) as client:
        form = (await client.get("/admin/login")).text
        assert f"<code>[admin] {source}</code>" in form
        other = "token_file" if source == "token" else "token"
        assert f"<code>[admin] {other}</code>" not in form


async def test_without_odoo_the_page_says_posting_is_off_and_counts_stored_events(
    tmp_path: Path,
) -> None:
    inbox = open_inbox(StoreConfig(url=f"sqlite:///{tmp_path}/inbox.db"))
    await inbox.open()
    try:
        gateway = await register(inbox, "line-texts")
    finally:
        await inbox.close()
    relay = running_relay(tmp_path, {"token": TOKEN})
    async with relay as url, httpx.AsyncClient(base_url=url) as client:
        response = await upload(client, url, gateway, batch_body("line-texts", 1, 7))
        assert response.status_code == 200, response.text
        await client.post("/admin/login", data={"token": TOKEN})
        page = (await client.get("/admin")).text
    assert "posting to Odoo is off in this relay (no [odoo] section)" in page
    assert "not running in this process" not in page
    assert "<th>Stored events</th><td>7 from the gateways" in page
