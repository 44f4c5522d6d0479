"""Serving the sandbox on loopback under uvicorn, standalone or in the background for tests.

``serve_sandbox`` is what ``cloud-relay sandbox --listen HOST:PORT --odoo-version N`` runs;
``running_sandbox`` starts one on a free port and yields where to reach it. Either can stop
listening for a while (connections are then refused) and listen again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import uvicorn

from cloud_relay.odoo.sandbox.app import create_app
from cloud_relay.odoo.sandbox.dispatch import Sandbox, SandboxInfo, new_accounts
from cloud_relay.odoo.sandbox.env import Clock, utc_now
from cloud_relay.odoo.sandbox.faults import FaultInjector

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class ServerStats:
    """Whether the server listens, where, and how often it stopped listening."""

    listening: bool
    port: int
    refusals: int
    calls_total: int
    faults_fired: int


class SandboxServer:
    """A sandbox's app under uvicorn on one loopback port."""

    def __init__(self, sandbox: Sandbox, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self.host = host
        self.port = port
        self._app = create_app(sandbox, self.refuse_for)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._refusing: asyncio.Task[None] | None = None
        self._refusals = 0

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self.host}:{self.port}"

    @property
    def listening(self) -> bool:
        """Whether connections are accepted now."""
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Bind the port (a free one the first time if 0) and serve in the background."""
        if self.listening:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Inherited by accepted connections: without it, loopback calls stall ~40 ms each.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=1,
            timeout_keep_alive=30,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_TIMEOUT_SECONDS
        while not server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the sandbox server stopped while starting")
            if loop.time() > deadline:
                raise TimeoutError("the sandbox server did not start in time")
            await asyncio.sleep(0.01)
        logger.info("Odoo %s sandbox listening on %s", self.sandbox.version, self.base_url)

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        # Shielded: a caller cancelled here (a refusal cut short) must not cancel the server
        # half-way through its shutdown, which would leave a cancelled task to the next stop.
        await asyncio.shield(task)
        self._server = self._task = None

    async def refuse_for(self, seconds: float) -> None:
        """Refuse connections for ``seconds``, then listen again (returns at once)."""
        if self._refusing is not None and not self._refusing.done():
            return
        self._refusing = asyncio.create_task(self._refuse(seconds))

    async def _refuse(self, seconds: float) -> None:
        await asyncio.sleep(0)
        self._refusals += 1
        logger.info("sandbox refusing connections for %.1f s", seconds)
        await self.stop()
        await asyncio.sleep(seconds)
        await self.start()

    async def close(self) -> None:
        """Stop for good (cancelling a pending refusal)."""
        if self._refusing is not None and not self._refusing.done():
            self._refusing.cancel()
            await asyncio.gather(self._refusing, return_exceptions=True)
        await self.stop()

    def stats(self) -> ServerStats:
        """Listening state, port, refusals and the injector's counters."""
        faults = self.sandbox.faults.stats()
        return ServerStats(
            self.listening, self.port, self._refusals, faults.calls_total, faults.faults_fired
        )


@dataclass(frozen=True)
class SandboxHandle:
    """A running sandbox: where to reach it, as whom, and the objects to steer it in-process."""

    base_url: str
    database: str
    login: str
    api_key: str
    info: SandboxInfo
    sandbox: Sandbox
    server: SandboxServer

    @property
    def faults(self) -> FaultInjector:
        """The sandbox's fault injector and call counters."""
        return self.sandbox.faults


@contextlib.asynccontextmanager
async def running_sandbox(
    odoo_version: int = 18,
    *,
    database: str = "plant",
    host: str = "127.0.0.1",
    backoff_scale: float = 0.0,
    clock: Clock = utc_now,
) -> AsyncIterator[SandboxHandle]:
    """Start a sandbox on a free loopback port for the block's duration.

    ``clock`` replaces the server clock (time logs, dates) so tests can control time.
    """
    sandbox = Sandbox(
        odoo_version,
        database=database,
        faults=FaultInjector(backoff_scale=backoff_scale),
        clock=clock,
    )
    server = SandboxServer(sandbox, host)
    await server.start()
    info = sandbox.info
    try:
        yield SandboxHandle(
            server.base_url, database, info.login, info.api_key, info, sandbox, server
        )
    finally:
        await server.close()


async def serve_sandbox(
    listen: str,
    odoo_version: int,
    *,
    database: str = "plant",
    admin_password: str = "admin",
    backoff_scale: float = 1.0,
    on_ready: Callable[[SandboxInfo, str], None] | None = None,
) -> None:
    """Serve a sandbox on ``listen`` (``host:port``) until cancelled.

    ``on_ready`` receives the credentials and base URL once the port accepts connections
    (the caller decides how to show them; they are never logged).
    """
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"listen must be host:port, not {listen!r}")
    sandbox = Sandbox(
        odoo_version,
        database=database,
        accounts=new_accounts(admin_password),
        faults=FaultInjector(backoff_scale=backoff_scale),
    )
    server = SandboxServer(sandbox, host, int(port))
    await server.start()
    if on_ready is not None:
        on_ready(sandbox.info, server.base_url)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()
