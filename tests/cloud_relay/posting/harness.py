"""A plant, an inbox, a posting store, the writer and a sandbox Odoo, wired for one test.

``WRITER_REAL_ODOO`` points the same tests at a real Odoo run by hand instead of the sandbox:
``URL,TEMPLATE_DB,MASTER_PASSWORD,ADMIN_KEY_FILE,CONNECTOR_LOGIN,CONNECTOR_KEY_FILE``, and
``WRITER_REAL_ODOO_VERSION`` its major version (default 18). Each test
then works in a fresh copy of the template database (``db.duplicate_database``), which must
have mrp and stock installed and both API keys. Tests that need the sandbox's fault injection
are skipped there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from cloud_relay.config import WriterConfig
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import InboxEvent
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.sandbox import SandboxHandle, running_sandbox
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.posting.worker import PostingWorker
from tests.cloud_relay.odoo.sandbox.scenario import (
    ADMIN_UID,
    Rpc,
    bom,
    confirmed_mo,
    count_stock,
    storable,
)
from wire.ids import new_event_id

BASE_TIME = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
FAST = WriterConfig(
    patience_seconds=0.0,
    retry_initial_seconds=0.02,
    retry_max_seconds=0.05,
    poll_seconds=0.05,
    linger_seconds=0.0,
)


@dataclass
class Plant:
    """A gateway's events, numbered as the agent numbers them."""

    gateway_id: str = "gw-1"
    seq: int = 0
    clock: datetime = BASE_TIME
    sent: list[InboxEvent] = field(default_factory=list)

    def event(self, event_type: str, **data: Any) -> InboxEvent:
        self.seq += 1
        self.clock += timedelta(seconds=1)
        event_id = new_event_id()
        body = {
            "id": event_id,
            "gateway_id": self.gateway_id,
            "seq": self.seq,
            "type": event_type,
            "occurred_at": self.clock.isoformat(),
            "source": "test",
            "data": {k: v for k, v in data.items() if v is not None},
        }
        event = InboxEvent(event_id, self.seq, event_type, self.clock, json.dumps(body).encode())
        self.sent.append(event)
        return event


@dataclass
class Line:
    """Master data of one test line: a finished product with a two-component BOM."""

    finished: int
    bolt: int
    lotted: int
    bom: int
    codes: dict[str, int]


@dataclass
class Rig:
    """Everything one writer test drives."""

    odoo: SandboxHandle
    """The sandbox (None against a real Odoo)."""
    x: Rpc
    inbox: SqliteInbox
    store: SqlitePostingStore
    writer: PostingWorker
    plant: Plant
    task: asyncio.Task[None] | None = None

    async def send(self, *events: InboxEvent) -> None:
        """Store events in the inbox as ingest would, and wake the writer."""
        first = events[0].seq
        await self.inbox.store_batch(self.plant.gateway_id, "test-key", first, list(events))
        self.writer.wake()

    async def settle(self, within: float = 30.0) -> None:
        """Wait until nothing is pending that the writer could post now."""
        deadline = asyncio.get_running_loop().time() + within
        while True:
            # In this order: postings are added with the cursor in one transaction.
            acked = await self.inbox.acked_seq(self.plant.gateway_id)
            routed = await self.store.route_cursor(self.plant.gateway_id)
            counts = await self.store.counts()
            if counts.pending == 0 and routed >= acked:
                return
            if self.task is not None and self.task.done():
                self.task.result()
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"writer did not settle: {counts}, {self.writer.stats()}")
            await asyncio.sleep(0.02)

    async def line(self, suffix: str = "") -> Line:
        """Products BOLT/LOTTED (components) and a finished product WIDGET, a BOM 2 + 1."""
        codes: dict[str, int] = {}
        finished = await storable(self.x, f"Widget{suffix}", "lot", code=f"WIDGET{suffix}")
        bolt = await storable(self.x, f"Bolt{suffix}", code=f"BOLT{suffix}")
        lotted = await storable(self.x, f"Resin{suffix}", "lot", code=f"RESIN{suffix}")
        codes.update({f"WIDGET{suffix}": finished, f"BOLT{suffix}": bolt, f"RESIN{suffix}": lotted})
        await count_stock(self.x, bolt, 1000)
        bom_id = await bom(self.x, finished, [(bolt, 2), (lotted, 1)], consumption="flexible")
        return Line(finished, bolt, lotted, bom_id, codes)

    async def mo(self, line: Line, quantity: float) -> tuple[int, str]:
        """A confirmed MO of the line's product: id and name."""
        mo = await confirmed_mo(self.x, line.finished, quantity, line.bom)
        name = (await self.x("mrp.production", "read", [mo], fields=["name"]))[0]["name"]
        return mo, name

    async def read(self, model: str, ids: list[int], *fields: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.x(model, "read", ids, fields=list(fields))
        return rows

    async def search_read(
        self, model: str, domain: list[Any], *fields: str
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = await self.x(model, "search_read", domain, fields=list(fields))
        return rows


REAL_ODOO = os.environ.get("WRITER_REAL_ODOO", "")
#: The major version of that real Odoo; only the tests of that version run against it.
REAL_ODOO_VERSION = int(os.environ.get("WRITER_REAL_ODOO_VERSION", "18"))


@dataclass(frozen=True)
class RealOdoo:
    """A real Odoo reached by URL, in a fresh copy of a template database."""

    base_url: str
    database: str
    login: str
    api_key: str
    admin_api_key: str


def needs_sandbox() -> None:
    """Skip a test that steers the sandbox when the tests run against a real Odoo."""
    if REAL_ODOO:
        pytest.skip("needs the sandbox's fault injection")


@contextlib.asynccontextmanager
async def _odoo(version: int) -> AsyncIterator[tuple[Any, RealOdoo]]:
    if not REAL_ODOO:
        async with running_sandbox(version) as handle:
            yield (
                handle,
                RealOdoo(
                    handle.base_url,
                    handle.database,
                    handle.login,
                    handle.api_key,
                    handle.info.admin_api_key,
                ),
            )
        return
    url, template, master, admin_key_file, login, key_file = REAL_ODOO.split(",")
    key = Path(key_file).read_text().strip()  # noqa: ASYNC240 (a test set-up read)
    admin_key = Path(admin_key_file).read_text().strip()  # noqa: ASYNC240
    database = f"{template}_{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=url, timeout=300) as http:
        payload = {
            "jsonrpc": "2.0",
            "method": "call",
            "params": {
                "service": "db",
                "method": "duplicate_database",
                "args": [master, template, database],
            },
        }
        answer = (await http.post("/jsonrpc", json=payload)).json()
        assert "error" not in answer, answer
        try:
            yield (
                None,
                RealOdoo(
                    url,
                    database,
                    login,
                    key,
                    admin_key,
                ),
            )
        finally:
            payload["params"] = {"service": "db", "method": "drop", "args": [master, database]}
            await http.post("/jsonrpc", json=payload)


@contextlib.asynccontextmanager
async def rig(
    tmp_path: Path,
    version: int = 18,
    config: WriterConfig = FAST,
    start: bool = True,
) -> AsyncIterator[Rig]:
    """A sandbox Odoo, an inbox and posting store in one SQLite file, and a running writer."""
    if REAL_ODOO and version != REAL_ODOO_VERSION:
        pytest.skip(f"the real Odoo run by hand is {REAL_ODOO_VERSION}")
    async with (
        _odoo(version) as (sandbox, handle),
        httpx.AsyncClient(base_url=handle.base_url, timeout=60) as http,
    ):
        x = Rpc(http, handle.database, ADMIN_UID, handle.admin_api_key)
        path = tmp_path / "inbox.db"
        inbox = SqliteInbox(path)
        await inbox.open()
        store = SqlitePostingStore(path)
        await store.open()
        odoo = OdooConfig(
            url=handle.base_url,
            database=handle.database,
            login=handle.login,
            api_key=SecretStr(handle.api_key),
            retry_backoff_seconds=0.01,
        )
        writer = PostingWorker(inbox, store, odoo, config)
        r = Rig(sandbox, x, inbox, store, writer, Plant())
        if start:
            r.task = asyncio.create_task(writer.run())
        try:
            yield r
        finally:
            if r.task is not None:
                r.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await r.task
            await store.close()
            await inbox.close()


Check = Callable[[], Awaitable[bool]]


async def eventually(check: Check, within: float = 20.0, what: str = "condition") -> None:
    """Wait for ``check`` to hold."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
