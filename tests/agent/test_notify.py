"""The agent speaks systemd's notify protocol to a real datagram socket, as systemd listens."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.app import run_agent
from agent.config import AgentSettings
from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from runtime.notify import Notifier
from tests.fixtures.mosquitto import free_port
from wire.keys import write_keypair

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

    async def receive_until(self, key: str) -> list[dict[str, str]]:
        """Messages up to and including the first that carries ``key``."""
        seen = [await self.receive()]
        while key not in seen[-1]:
            seen.append(await self.receive())
        return seen


def _listening(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.setblocking(False)
    return sock


@pytest.fixture
def manager() -> Iterator[ServiceManager]:
    """A notify socket in the abstract namespace, as ``NOTIFY_SOCKET=@name`` names it."""
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    with _listening("\0" + name) as sock:
        yield ServiceManager(sock, "@" + name)


async def test_messages_reach_a_socket_file() -> None:
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:  # short: AF_UNIX paths max 107 bytes
        path = f"{tmp}/notify"
        with _listening(path) as sock:
            notifier = Notifier({"NOTIFY_SOCKET": path})
            notifier.ready("serving:\n gateway gw-1")
            message = await ServiceManager(sock, path).receive()
    assert message == {"READY": "1", "STATUS": "serving: gateway gw-1"}


async def test_messages_reach_an_abstract_socket(manager: ServiceManager) -> None:
    notifier = Notifier(manager.environ())
    assert notifier.enabled and notifier.watchdog_seconds is None
    notifier.status("catching up")
    notifier.stopping()
    assert await manager.receive() == {"STATUS": "catching up"}
    assert await manager.receive() == {"STOPPING": "1", "STATUS": "stopping"}


async def test_without_notify_socket_nothing_is_sent_and_the_watchdog_returns() -> None:
    notifier = Notifier({"WATCHDOG_USEC": "1000"})
    assert not notifier.enabled and notifier.watchdog_seconds is None
    notifier.ready("serving")
    await notifier.run_watchdog()


def test_a_watchdog_meant_for_another_process_is_ignored(manager: ServiceManager) -> None:
    env = manager.environ(watchdog_usec=30_000_000)
    assert Notifier(env).watchdog_seconds == 30.0
    assert Notifier(env | {"WATCHDOG_PID": str(os.getpid() + 1)}).watchdog_seconds is None


def test_a_vanished_socket_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    Notifier({"NOTIFY_SOCKET": f"@edge-agent-test-{uuid.uuid4().hex}"}).ready("serving")
    assert "cannot notify the service manager" in caplog.text


async def test_watchdog_pings_only_while_the_probe_answers(manager: ServiceManager) -> None:
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
        notifier.run_watchdog(probe, what="queue writer", status=lambda: "3 events queued")
    )
    try:
        got = [await manager.receive() for _ in range(4)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    withheld = {"STATUS": "queue writer not answering: watchdog withheld"}
    assert got == [
        {"WATCHDOG": "1", "STATUS": "3 events queued"},
        withheld,
        {"WATCHDOG": "1", "STATUS": "3 events queued"},
        withheld,
    ]
    assert released.is_set()


async def test_queue_ping_answers_only_while_the_writer_thread_is_free(tmp_path: Path) -> None:
    store = await QueueStore.open(tmp_path / "queue.db", "gw-1", QueueConfig())
    try:
        assert await store.ping()
        gate = threading.Event()
        # Occupy the writer's thread, as a transaction stuck on a dead disk would.
        busy = store._opened.writer.submit(lambda conn: gate.wait(WAIT_SECONDS))
        probe = asyncio.create_task(store.ping())
        done, _ = await asyncio.wait([probe], timeout=0.2)
        assert not done, "the ping answered while the writer's thread was busy"
        gate.set()
        assert await busy
        assert await probe
    finally:
        await store.close()
    assert not await store.ping()


@pytest.fixture
async def agent_settings(tmp_path: Path) -> AsyncIterator[AgentSettings]:
    write_keypair(tmp_path / "gateway.key")
    yield AgentSettings.model_validate(
        {
            "gateway": {
                "id": "gw-notify",
                "signing_key_file": tmp_path / "gateway.key",
                "state_dir": tmp_path / "state",
            },
            # Nothing listens there: the uploader retries quietly, which is all this needs.
            "relay": {"url": f"http://127.0.0.1:{free_port()}", "backoff_max_seconds": 0.5},
            "queue": {"durability": "process"},
            "health": {"listen": f"127.0.0.1:{free_port()}"},
        }
    )


async def test_agent_is_ready_once_its_health_page_serves_then_pings_and_stops(
    manager: ServiceManager, agent_settings: AgentSettings
) -> None:
    notifier = Notifier(manager.environ(watchdog_usec=2_000_000))
    agent = asyncio.create_task(
        run_agent(agent_settings, install_signal_handlers=False, notifier=notifier)
    )
    try:
        ready = await manager.receive()
        assert ready == {"READY": "1", "STATUS": "serving: gateway gw-notify"}
        host, _, port = agent_settings.health.listen.rpartition(":")
        _, writer = await asyncio.open_connection(host, int(port))  # it accepts already
        writer.close()
        await writer.wait_closed()
        ping = await manager.receive()
        assert ping == {"WATCHDOG": "1", "STATUS": "serving: gateway gw-notify, 0 events queued"}
    finally:
        agent.cancel()
        await asyncio.gather(agent, return_exceptions=True)
    stopping = await manager.receive_until("STOPPING")
    assert stopping[-1] == {"STOPPING": "1", "STATUS": "stopping: closing the queue"}
