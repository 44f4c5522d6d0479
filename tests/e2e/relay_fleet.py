"""Real processes for relay crash tests: relay replicas, the agent, and a failover proxy.

Each relay replica is ``python -m cloud_relay run`` on a fixed loopback port, so a replica killed
with SIGKILL comes back on the same address; the agent is ``python -m agent run`` with no sources
(it always runs the uploader). :class:`FailoverProxy` stands in for a load balancer in front of
several replicas: each new connection goes to the next replica that accepts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "e2e-admin-token-0123456789"
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.02


def child_env() -> dict[str, str]:
    """The environment for child processes: this checkout first, no inherited overrides."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CLOUD_RELAY__", "EDGE_AGENT__"))
    }
    env["PYTHONPATH"] = str(ROOT)
    return env


async def run_module(*args: str) -> str:
    """Run ``python -m <args>`` to completion; returns stdout, fails the test on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *args,
        cwd=ROOT,
        env=child_env(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), WAIT_SECONDS)
    assert process.returncode == 0, f"{' '.join(args)} exited {process.returncode}: {err.decode()}"
    return out.decode()


async def kill9_process(process: asyncio.subprocess.Process | None, what: str) -> None:
    """SIGKILL a running child and reap it; fails the test when it is already down."""
    assert process is not None and process.returncode is None, f"{what} is down"
    process.send_signal(signal.SIGKILL)
    assert await process.wait() == -signal.SIGKILL


async def stop_process(process: asyncio.subprocess.Process | None) -> int:
    """SIGTERM a child and wait for it; its exit code (0 when it never ran). A child that does
    not stop within WAIT_SECONDS is killed and the test fails."""
    if process is None or process.returncode is not None:
        return 0 if process is None else process.returncode or 0
    process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(process.wait(), WAIT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise


async def spawn_run(module: str, config: Path, log: Path) -> asyncio.subprocess.Process:
    """``python -m <module> run --config <config>`` with its output in ``log``."""
    with log.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            "run",
            "--config",
            str(config),
            cwd=ROOT,
            env=child_env(),
            stdout=out,
            stderr=out,
        )


def error_records(log: Path) -> list[dict[str, Any]]:
    """The JSON log records of ``log`` at level error or above."""
    records = []
    for line in log.read_text().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("level") in ("error", "critical"):
                records.append(record)
    return records


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a log, for failure messages."""
    return "\n".join(path.read_text().splitlines()[-lines:]) if path.exists() else "(no log)"


class RelayProcess:
    """One relay replica: ``python -m cloud_relay run`` on ``127.0.0.1:<port>``."""

    def __init__(
        self,
        name: str,
        directory: Path,
        store_url: str,
        port: int,
        *,
        public_url: str | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.config = directory / f"relay-{name}.toml"
        server = f'listen = "127.0.0.1:{port}"\n'
        if public_url is not None:
            server += f'public_url = "{public_url}"\n'
        self.config.write_text(
            f"[server]\n{server}"
            f'[store]\nurl = "{store_url}"\npool_size = 4\n'
            f'[admin]\ntoken = "{ADMIN_TOKEN}"\n'
            '[log]\nformat = "json"\n'
        )
        self._directory = directory
        self._process: asyncio.subprocess.Process | None = None
        self.starts = 0
        self.logs: list[Path] = []

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def add_gateway(self, gateway_id: str, public_key: Path) -> None:
        """Register the gateway's key with ``cloud_relay gateway add``."""
        await run_module(
            "cloud_relay",
            "gateway",
            "add",
            "--id",
            gateway_id,
            "--public-key",
            str(public_key),
            "--config",
            str(self.config),
        )

    async def start(self) -> None:
        """Spawn the replica and wait until its ``/healthz`` answers 200."""
        assert not self.running, f"relay {self.name} is already running"
        log = self._directory / f"relay-{self.name}-{self.starts}.log"
        self.logs.append(log)
        self.starts += 1
        self._process = await spawn_run("cloud_relay", self.config, log)
        await self._wait_healthy(log)

    async def _wait_healthy(self, log: Path) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_SECONDS
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.running, f"relay {self.name} exited while starting:\n{tail(log)}"
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(self.base_url + "/healthz")).status_code == 200:
                        return
                assert loop.time() < deadline, f"relay {self.name} never became healthy"
                await asyncio.sleep(POLL_SECONDS)

    async def kill9(self) -> None:
        """SIGKILL the replica and reap it."""
        await kill9_process(self._process, f"relay {self.name}")

    async def stop(self) -> int:
        """SIGTERM (graceful stop); returns the exit code."""
        return await stop_process(self._process)

    async def events_replayed(self) -> int:
        """Events this replica answered 200 again without storing them, since it started."""
        async with httpx.AsyncClient(timeout=10) as client:
            # Behind a proxy (public_url) /metrics asks for a token.
            response = await client.get(
                self.base_url + "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
            )
        response.raise_for_status()
        for family in text_string_to_metric_families(response.text):
            if family.name == "cloud_relay_inbox_events_replayed":
                return int(family.samples[0].value)
        raise AssertionError("the relay's /metrics has no cloud_relay_inbox_events_replayed")

    async def gateway_acked_seq(self, gateway_id: str) -> int:
        """The gateway's ack point as the admin API reports it."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(
                f"{self.base_url}/v1/gateways/{gateway_id}",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
        response.raise_for_status()
        acked: int = response.json()["acked_seq"]
        return acked


class AgentProcess:
    """The edge agent, ``python -m agent run``, with no sources: only the uploader works."""

    def __init__(
        self,
        directory: Path,
        gateway_id: str,
        key: Path,
        queue: Path,
        relay_url: str,
        health_port: int,
    ) -> None:
        self.health_url = f"http://127.0.0.1:{health_port}/healthz"
        self.config = directory / "agent.toml"
        self.config.write_text(
            f'[gateway]\nid = "{gateway_id}"\nsigning_key_file = "{key}"\n'
            f'state_dir = "{directory / "agent-state"}"\n'
            f'[relay]\nurl = "{relay_url}"\nbatch_max_age_ms = 0\ntimeout_seconds = 10\n'
            "backoff_initial_seconds = 0.01\nbackoff_max_seconds = 0.2\n"
            f'[queue]\npath = "{queue}"\n'
            f'[health]\nlisten = "127.0.0.1:{health_port}"\n'
            '[log]\nformat = "json"\n'
        )
        self.log = directory / "agent.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        self._process = await spawn_run("agent", self.config, self.log)

    async def queue_stats(self) -> dict[str, Any]:
        """``agent queue-stats --json``: the queue as read from its file."""
        stats: dict[str, Any] = json.loads(
            await run_module("agent", "queue-stats", "--json", "--config", str(self.config))
        )
        return stats

    async def uploader_stats(self) -> dict[str, Any]:
        """The uploader's figures from the agent's health page."""
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(self.health_url)
        stats: dict[str, Any] = response.json()["components"]["uploader"]
        return stats

    async def stop(self) -> int:
        """SIGTERM; returns the exit code."""
        process = self._process
        if process is None:
            return 0
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(process.wait(), WAIT_SECONDS)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise


class FailoverProxy:
    """A loopback load balancer: each new connection goes to the next replica that accepts it,
    in turn, so a client alternates between replicas whenever it reconnects.

    :meth:`swallow_next_answer` drops the next answer a replica sends, cuts the client off and
    sends nothing more to that replica until :meth:`revive`: what a client sees of a replica
    that dies between its commit and its answer.
    """

    def __init__(self, ports: Sequence[int]) -> None:
        self._ports = list(ports)
        self._next = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._swallow: asyncio.Future[int] | None = None
        self._down: set[int] = set()
        self.port = 0
        self.last_target: int | None = None
        """Index of the replica that took the latest connection."""
        self.connections = [0] * len(self._ports)
        """Connections forwarded to each replica."""

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()

    def swallow_next_answer(self) -> asyncio.Future[int]:
        """Drop the next bytes any replica sends and cut that connection; the future gets the
        index of the replica whose answer was dropped."""
        self._swallow = asyncio.get_running_loop().create_future()
        return self._swallow

    def revive(self, index: int) -> None:
        """Forward to replica ``index`` again."""
        self._down.discard(index)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for attempt in range(len(self._ports)):
            index = (self._next + attempt) % len(self._ports)
            if index in self._down:
                continue
            try:
                up_reader, up_writer = await asyncio.open_connection(
                    "127.0.0.1", self._ports[index]
                )
            except OSError:
                continue
            self._next = index + 1
            self.last_target = index
            self.connections[index] += 1
            await self._forward(index, reader, writer, up_reader, up_writer)
            return
        writer.transport.abort()  # no replica up: the client sees a refused request

    async def _forward(
        self,
        index: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        up_reader: asyncio.StreamReader,
        up_writer: asyncio.StreamWriter,
    ) -> None:
        pair = {writer, up_writer}
        self._writers |= pair
        try:
            await asyncio.gather(_pump(reader, up_writer), self._answers(index, up_reader, writer))
        finally:
            self._writers -= pair
            for w in pair:
                w.transport.abort()

    async def _answers(
        self, index: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Forward what the replica sends, unless an answer is to be swallowed."""

        def swallow() -> bool:
            if self._swallow is None or self._swallow.done():
                return False
            self._down.add(index)
            self._swallow.set_result(index)
            return True

        await _pump(reader, writer, swallow)


async def _pump(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    drop: Callable[[], bool] = lambda: False,
) -> None:
    """Copy until end of stream, then pass the end on; a reset (or ``drop()`` saying so for
    some bytes) resets the other side too, so neither end waits for what cannot come."""
    try:
        while data := await reader.read(65536):
            if drop():
                writer.transport.abort()
                return
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        writer.transport.abort()
        return
    if not writer.transport.is_closing():
        writer.write_eof()
