"""Upload bodies cost memory only once signed, and then only within a budget: measured on the
resident memory of a real relay process flooded with large uploads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cloud_relay.support import Gateway, free_port, signed_headers
from tests.cloud_relay.test_cli import ROOT, _env, _wait_healthy, relay_cli, write_config
from wire.batch import BATCH_PATH
from wire.keys import generate_private_key

MIB = 1024 * 1024
#: Concurrent unsigned uploads and the size of each.
FLOOD_UPLOADS = int(os.environ.get("RELAY_TEST_FLOOD_UPLOADS", "12"))
FLOOD_BYTES = int(os.environ.get("RELAY_TEST_FLOOD_MIB", "8")) * MIB
#: The relay's budget of body bytes read at once, and the signed uploads sent against it.
BUDGET_BYTES = 16 * MIB
SIGNED_UPLOADS = 6
SIGNED_BYTES = 6 * MIB
#: Growth of the relay's peak resident memory allowed while unsigned uploads are refused.
UNSIGNED_GROWTH_BYTES = 16 * MIB
ANSWER_SECONDS = 20.0


@dataclass
class RelayProcess:
    url: str
    host: str
    port: int
    process: subprocess.Popen[str]
    gateway: Gateway

    def memory(self, field: str) -> int:
        """``VmRSS`` or ``VmHWM`` (peak) of the relay, in bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
        raise AssertionError(f"no {field} in /proc/{self.process.pid}/status")


@pytest.fixture
def relay_process(tmp_path: Path) -> Iterator[RelayProcess]:
    port = free_port()
    config = write_config(
        tmp_path,
        f'[server]\nlisten = "127.0.0.1:{port}"\nmax_inflight_body_bytes = {BUDGET_BYTES}\n',
    )
    gateway = Gateway("line-1", generate_private_key())
    (tmp_path / "k.pub").write_text(gateway.public_pem)
    added = relay_cli(
        "gateway", "add", "--id", "line-1", "--public-key", str(tmp_path / "k.pub"), config=config
    )
    assert added.returncode == 0, added.stderr
    process = subprocess.Popen(
        [sys.executable, "-m", "cloud_relay", "run", "--config", str(config)],
        cwd=ROOT,
        env=_env(None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_healthy(base, process)
        yield RelayProcess(base, "127.0.0.1", port, process, gateway)
    finally:
        process.kill()
        process.wait()


@dataclass
class Answer:
    status: int
    headers: dict[str, str]


@contextlib.asynccontextmanager
async def connection(
    relay: RelayProcess,
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(relay.host, relay.port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def request_head(relay: RelayProcess, length: int, headers: dict[str, str]) -> bytes:
    lines = [f"POST {BATCH_PATH} HTTP/1.1", f"Host: {relay.host}:{relay.port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines += [f"Content-Length: {length}", "Content-Type: application/json", "", ""]
    return "\r\n".join(lines).encode()


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_SECONDS)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers)


async def send_quietly(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Send ``data`` as far as the relay takes it; a relay that answered and hung up is fine."""
    with contextlib.suppress(OSError):
        for start in range(0, len(data), MIB):
            writer.write(data[start : start + MIB])
            await writer.drain()


@pytest.mark.parametrize("headers", ["none", "unknown key"])
async def test_an_unsigned_upload_is_refused_before_its_body_is_sent(
    relay_process: RelayProcess, headers: str
) -> None:
    """The relay answers while almost all of a 15 MB body is still unsent: it read none of it."""
    length = 15 * 1000 * 1000
    signed = {}
    if headers == "unknown key":
        stranger = Gateway("line-1", generate_private_key())
        signed = signed_headers(stranger, relay_process.url + BATCH_PATH, b"x" * length)
        del signed["Content-Type"]
    async with connection(relay_process) as (reader, writer):
        writer.write(request_head(relay_process, length, signed) + b"{" * 1024)
        await writer.drain()
        answer = await read_answer(reader)
    assert answer.status == (401 if headers == "none" else 403)


async def test_a_flood_of_unsigned_uploads_does_not_grow_memory(
    relay_process: RelayProcess,
) -> None:
    body = b"[" * FLOOD_BYTES
    head = request_head(relay_process, len(body), {})
    peak_before = relay_process.memory("VmHWM")

    async def one() -> int:
        async with connection(relay_process) as (reader, writer):
            writer.write(head)
            sending = asyncio.create_task(send_quietly(writer, body))
            answer = await read_answer(reader)
            await sending
            return answer.status

    statuses = await asyncio.gather(*(one() for _ in range(FLOOD_UPLOADS)))
    assert statuses == [401] * FLOOD_UPLOADS
    growth = relay_process.memory("VmHWM") - peak_before
    assert growth < UNSIGNED_GROWTH_BYTES, (
        f"peak RSS grew {growth / MIB:.1f} MiB under {FLOOD_UPLOADS} unsigned uploads of"
        f" {FLOOD_BYTES / MIB:.0f} MiB"
    )


async def test_signed_uploads_past_the_budget_are_told_to_retry(
    relay_process: RelayProcess,
) -> None:
    """Signed uploads are read, but only as many at once as the budget holds: the rest get 503
    with Retry-After before a byte of their body is read, and memory stays bounded."""
    body = b"[" * SIGNED_BYTES  # signed, but no batch: each one read is refused 422 after
    url = relay_process.url + BATCH_PATH
    head = request_head(relay_process, len(body), signed_headers(relay_process.gateway, url, body))
    peak_before = relay_process.memory("VmHWM")
    opened = []
    answers: list[Answer] = []
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(SIGNED_UPLOADS):
            reader, writer = await stack.enter_async_context(connection(relay_process))
            writer.write(head)  # every head first: all of them wait for room at once
            await writer.drain()
            opened.append((reader, writer))

        async def finish(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Answer:
            sending = asyncio.create_task(send_quietly(writer, body))
            answer = await read_answer(reader)
            await sending
            return answer

        answers = list(await asyncio.gather(*(finish(r, w) for r, w in opened)))
    statuses = sorted(a.status for a in answers)
    busy = [a for a in answers if a.status == 503]
    assert set(statuses) <= {422, 503} and busy and 422 in statuses, statuses
    assert all(int(a.headers["retry-after"]) >= 1 for a in busy)
    growth = relay_process.memory("VmHWM") - peak_before
    assert growth < 3 * BUDGET_BYTES, f"peak RSS grew {growth / MIB:.1f} MiB"
