"""The Odoo side of writer crash tests: the sandbox as a child process, a production line in
it, and a relay process configured to post into it.

The sandbox runs as ``python -m cloud_relay sandbox`` so that its state (the Odoo records and
the call counts) outlives every relay it serves; the relay is ``python -m cloud_relay run`` with
an ``[odoo]`` section, so killing it is killing the writer.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.posting.store import PostingCounts
from tests.cloud_relay.odoo.sandbox.scenario import (
    Rpc,
    bom,
    confirmed_mo,
    count_stock,
    storable,
)
from tests.cloud_relay.support import free_port
from tests.e2e.relay_fleet import ADMIN_TOKEN, ROOT, WAIT_SECONDS, RelayProcess, child_env, tail


@dataclass(frozen=True)
class SandboxCredentials:
    """What ``cloud_relay sandbox --json`` prints: where it listens and its two accounts."""

    url: str
    odoo_version: int
    database: str
    login: str
    api_key: str
    admin_login: str
    admin_api_key: str


class SandboxProcess:
    """``python -m cloud_relay sandbox`` on a free loopback port, with its output in a log."""

    def __init__(self, directory: Path, version: int = 18) -> None:
        self.version = version
        self.log = directory / "sandbox.log"
        self._process: asyncio.subprocess.Process | None = None
        self._credentials: SandboxCredentials | None = None
        self._http: httpx.AsyncClient | None = None

    @property
    def credentials(self) -> SandboxCredentials:
        assert self._credentials is not None, "the sandbox is not started"
        return self._credentials

    @property
    def _client(self) -> httpx.AsyncClient:
        assert self._http is not None, "the sandbox is not started"
        return self._http

    async def start(self) -> SandboxCredentials:
        """Spawn the sandbox and read the credentials it prints once it listens."""
        port = free_port()
        with self.log.open("wb") as err:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "cloud_relay",
                "sandbox",
                "--listen",
                f"127.0.0.1:{port}",
                "--odoo-version",
                str(self.version),
                "--json",
                cwd=ROOT,
                env=child_env(),
                stdout=asyncio.subprocess.PIPE,
                stderr=err,
            )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), WAIT_SECONDS)
        except TimeoutError:
            raise AssertionError(f"the sandbox printed nothing:\n{tail(self.log)}") from None
        assert line, f"the sandbox exited while starting:\n{tail(self.log)}"
        self._credentials = SandboxCredentials(**json.loads(line))
        self._http = httpx.AsyncClient(base_url=self._credentials.url, timeout=60)
        return self._credentials

    def alive(self) -> None:
        """Fail the test when the sandbox has exited."""
        process = self._process
        assert process is not None and process.returncode is None, (
            f"the sandbox exited:\n{tail(self.log)}"
        )

    async def admin(self) -> Rpc:
        """A JSON-RPC client acting as the sandbox's administrator."""
        creds = self.credentials
        rpc = Rpc(self._client, creds.database, 0, creds.admin_api_key)
        answer = await rpc.raw(
            "common", "authenticate", creds.database, creds.admin_login, creds.admin_api_key, {}
        )
        uid = answer.get("result")
        assert isinstance(uid, int) and uid > 0, answer
        return rpc.as_user(uid, creds.admin_api_key)

    async def calls(self) -> dict[str, int]:
        """Calls the sandbox answered per ``model.method`` since the last reset."""
        response = await self._client.get("/sandbox/calls")
        response.raise_for_status()
        counted: dict[str, int] = response.json()["calls"]
        return counted

    async def calls_total(self) -> int:
        """Calls the sandbox answered since the last reset, all methods together."""
        response = await self._client.get("/sandbox/calls")
        response.raise_for_status()
        total: int = response.json()["total"]
        return total

    async def reset_calls(self) -> None:
        """Start counting calls from zero (to leave out the set-up)."""
        (await self._client.delete("/sandbox/calls")).raise_for_status()

    async def add_fault(self, rule: dict[str, Any]) -> None:
        """Arm a fault rule (``POST /sandbox/faults``; the kinds are in
        ``cloud_relay/odoo/sandbox/faults.py``)."""
        (await self._control("POST", "/sandbox/faults", rule)).raise_for_status()

    async def fault_rules(self) -> list[dict[str, Any]]:
        """The armed rules, each with the calls it still concerns (``remaining``)."""
        response = await self._control("GET", "/sandbox/faults")
        response.raise_for_status()
        rules: list[dict[str, Any]] = response.json()["rules"]
        return rules

    async def clear_faults(self) -> None:
        """Disarm every fault rule."""
        (await self._control("DELETE", "/sandbox/faults")).raise_for_status()

    async def _control(
        self, method: str, path: str, body: dict[str, Any] | None = None
    ) -> httpx.Response:
        """A control request, retried while the sandbox is not listening (a
        ``refuse_connections`` rule stops it for a while)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        while True:
            self.alive()
            try:
                return await self._client.request(method, path, json=body)
            except httpx.TransportError:
                if loop.time() > deadline:
                    raise
            await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """SIGTERM the sandbox and reap it (SIGKILL when it lingers)."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), WAIT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()


@dataclass(frozen=True)
class Line:
    """Master data of one production line: products by code, the BOM and confirmed MOs."""

    finished: int
    bolt: int
    nut: int
    bom: int
    orders: dict[str, int]
    """MO name to id, in creation order."""
    bolt_stock: float


async def production_line(
    x: Rpc, orders: int, order_qty: float = 1000, bolt_stock: float = 1_000_000
) -> Line:
    """An untracked WIDGET made of 2 BOLT and 1 NUT (both untracked, in stock), and
    ``orders`` confirmed MOs of ``order_qty`` each."""
    finished = await storable(x, "Widget", code="WIDGET")
    bolt = await storable(x, "Bolt", code="BOLT")
    nut = await storable(x, "Nut", code="NUT")
    await count_stock(x, bolt, bolt_stock)
    await count_stock(x, nut, bolt_stock)
    bom_id = await bom(x, finished, [(bolt, 2), (nut, 1)], consumption="flexible")
    ids = [await confirmed_mo(x, finished, order_qty, bom_id) for _ in range(orders)]
    rows = await x("mrp.production", "read", ids, fields=["name"])
    names = {int(row["id"]): str(row["name"]) for row in rows}
    return Line(finished, bolt, nut, bom_id, {names[i]: i for i in ids}, bolt_stock)


class WriterRelay(RelayProcess):
    """A relay replica on a SQLite store whose writer posts into the sandbox as the connector.

    ``writer`` holds ``[writer]`` options (TOML scalars); calls to Odoo are retried at once,
    since the sandbox on loopback has no reason to be slow twice.
    """

    def __init__(
        self,
        directory: Path,
        store: Path,
        sandbox: SandboxCredentials,
        writer: dict[str, Any],
    ) -> None:
        super().__init__("writer", directory, f"sqlite:///{store}", free_port())
        options = "".join(f"{key} = {json.dumps(value)}\n" for key, value in writer.items())
        self.config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\n'
            # A kill -9 is a process crash: WAL with synchronous=NORMAL keeps every commit.
            f'[store]\nurl = "sqlite:///{store}"\ndurability = "process"\n'
            f'[admin]\ntoken = "{ADMIN_TOKEN}"\n'
            '[log]\nformat = "json"\n'
            f"[odoo]\nurl = {json.dumps(sandbox.url)}\n"
            f"database = {json.dumps(sandbox.database)}\n"
            f"login = {json.dumps(sandbox.login)}\n"
            f"api_key = {json.dumps(sandbox.api_key)}\n"
            "retry_backoff_seconds = 0.01\n"
            f"[writer]\n{options}"
        )


@dataclass(frozen=True)
class Progress:
    """How far the writer is, read from the store file beside the relay."""

    acked_seq: int
    """The gateway's ack point in the inbox: events stored."""
    routed_seq: int
    """The writer's route cursor: events queued for posting."""
    counts: PostingCounts

    @property
    def backlog(self) -> int:
        """Events stored but not yet applied in Odoo (or dead-lettered)."""
        return self.acked_seq - self.routed_seq + self.counts.pending

    @property
    def settled(self) -> bool:
        """Every stored event was routed and nothing is left to post."""
        return self.counts.pending == 0 and self.routed_seq == self.acked_seq


class StoreWatch:
    """The inbox and posting store of the relay, opened from the test process."""

    def __init__(self, path: Path, gateway_id: str) -> None:
        self.gateway_id = gateway_id
        self.inbox = SqliteInbox(path, durability="process")
        self.postings = SqlitePostingStore(path, durability="process")

    async def open(self) -> None:
        await self.inbox.open()
        await self.postings.open()

    async def close(self) -> None:
        await self.postings.close()
        await self.inbox.close()

    async def progress(self) -> Progress:
        # In this order: the cursor moves with the postings it adds, so reading the ack point
        # first never shows a cursor behind events already routed.
        acked = await self.inbox.acked_seq(self.gateway_id)
        routed = await self.postings.route_cursor(self.gateway_id)
        return Progress(acked, routed, await self.postings.counts())
