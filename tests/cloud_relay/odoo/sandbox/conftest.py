"""Fixtures: a sandbox served by uvicorn on a free loopback port, with admin and connector
clients."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from cloud_relay.odoo.sandbox import running_sandbox
from tests.cloud_relay.odoo.sandbox.scenario import ADMIN_UID, Odoo, Rpc


async def _started(version: int) -> AsyncIterator[Odoo]:
    async with (
        running_sandbox(version) as handle,
        httpx.AsyncClient(base_url=handle.base_url) as http,
    ):
        info = handle.info
        admin = Rpc(http, handle.database, ADMIN_UID, info.admin_api_key)
        yield Odoo(handle, http, admin, admin.as_user(info.uid, handle.api_key))


@pytest.fixture(params=[17, 18, 19], ids=lambda v: f"odoo{v}")
async def odoo(request: pytest.FixtureRequest) -> AsyncIterator[Odoo]:
    """A sandbox of each supported version."""
    async for started in _started(request.param):
        yield started


@pytest.fixture
async def odoo18() -> AsyncIterator[Odoo]:
    """An Odoo 18 sandbox."""
    async for started in _started(18):
        yield started


@pytest.fixture
async def odoo19() -> AsyncIterator[Odoo]:
    """An Odoo 19 sandbox."""
    async for started in _started(19):
        yield started
