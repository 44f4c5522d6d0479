"""The relay speaks systemd's notify protocol to a real datagram socket, as systemd listens."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_relay.app import run_relay
from cloud_relay.config import RelaySettings
from runtime.notify import Notifier
from tests.cloud_relay.support import free_port

WAIT_SECONDS = 10.0


class ServiceManager:
    """The receiving end of ``NOTIFY_SOCKET``: one message per datagram."""

    def __init__(self, sock: socket.socket, address: str) -> None:
        self.sock = sock
        self.address = address

    def environ(self, watchdog_usec: int | None = None) -> dict[str, str]:
        env = {"NOTIFY_SOCKET": self.address}
        if watchdog_usec is not None:
            env |= {"WATCHDOG_USEC": str(watchdog_usec), "WATCHDOG_PID": str(os.getpid())}
        return env

    async def receive(self) -> dict[str, str]:
        """The next message, as its ``KEY=value`` lines."""
        async with asyncio.timeout(WAIT_SECONDS):
            data = await asyncio.get_running_loop().sock_recv(self.sock, 4096)
        return dict(line.split("=", 1) for line in data.decode().split("\n"))


def _listening(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock


@pytest.fixture
def manager() -> Iterator[ServiceManager]:
    """A notify socket in the abstract namespace, as ``NOTIFY_SOCKET=@name`` names it."""
    name = f"cloud-relay-test-{uuid.uuid4().hex}"
    with _listening("\0" + name) as sock:
        yield ServiceManager(sock, "@" + name)


async def test_messages_reach_a_socket_file() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:  # short: AF_UNIX paths max 107 bytes
        path = f"{tmp}/notify"
        with _listening(path) as sock:
            Notifier({"NOTIFY_SOCKET": path}).ready("serving on\n127.0.0.1:8080")
            message = await ServiceManager(sock, path).receive()
    assert message == {"READY": "1", "STATUS": "serving on 127.0.0.1:8080"}


async def test_without_notify_socket_nothing_is_sent_and_the_watchdog_returns() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000"})
    assert not notifier.enabled and notifier.watchdog_seconds is None
    notifier.ready("serving")
    await notifier.run_watchdog()


def test_a_watchdog_meant_for_another_process_is_ignored(manager: ServiceManager) -> None:
    env = manager.environ(watchdog_usec=30_000_000)
    assert Notifier(env).watchdog_seconds == 30.0
    assert Notifier(env | {"WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_seconds is None


async def test_relay_is_ready_once_it_serves_then_pings_and_stops(
    manager: ServiceManager, tmp_path: Path
) -> None:
    listen = f"127.0.0.1:{free_port()}"
    settings = RelaySettings.model_validate(
        {"server": {"listen": listen}, "store": {"url": f"sqlite:///{tmp_path}/inbox.db"}}
    )
    notifier = Notifier(manager.environ(watchdog_usec=2_000_000))
    relay = asyncio.create_task(
        run_relay(settings, install_signal_handlers=False, notifier=notifier)
    )
    try:
        messages = [await manager.receive()]
        while "READY" not in messages[-1]:
            messages.append(await manager.receive())
        assert messages[-1] == {"READY": "1", "STATUS": f"serving on {listen}"}
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://{listen}/healthz")
        assert response.status_code == 200
        assert await manager.receive() == {"WATCHDOG": "1"}
    finally:
        relay.cancel()
        await asyncio.gather(relay, return_exceptions=True)
    message = await manager.receive()
    while "STOPPING" not in message:
        message = await manager.receive()
    assert message["STOPPING"] == "1"


async def test_watchdog_pings_only_while_the_probe_says_well(manager: ServiceManager) -> None:
    answers = iter([True, False, True])
    released = asyncio.Event()

    async def probe() -> bool:
        answer = next(answers, None)
        if answer is None:
            released.set()
            await asyncio.Event().wait()  # never answers: the probe's timeout runs out
        return bool(answer)

    notifier = Notifier(manager.environ(watchdog_usec=100_000))
    task = asyncio.create_task(
        notifier.run_watchdog(probe, what="Odoo writer", status=lambda: "posting")
    )
    try:
        got = [await manager.receive() for _ in range(4)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    withheld = {"STATUS": "Odoo writer not answering: watchdog withheld"}
    ping = {"WATCHDOG": "1", "STATUS": "posting"}
    assert got == [ping, withheld, ping, withheld]
    assert released.is_set()
