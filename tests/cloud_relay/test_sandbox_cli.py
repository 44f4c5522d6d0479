"""``cloud-relay sandbox`` serves an Odoo stand-in that answers as the chosen version."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("version", [17, 19])
def test_sandbox_command_prints_credentials_and_answers(version: int) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cloud_relay",
            "sandbox",
            "--listen",
            f"127.0.0.1:{port}",
            "--odoo-version",
            str(version),
            "--json",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["url"] == f"http://127.0.0.1:{port}"
        call = {
            "service": "common",
            "method": "authenticate",
            "args": [info["database"], info["login"], info["api_key"], {}],
        }
        answer = httpx.post(
            f"{info['url']}/jsonrpc",
            json={"jsonrpc": "2.0", "method": "call", "params": call, "id": 1},
            timeout=10,
        ).json()
        assert isinstance(answer["result"], int)
        version_call = {"service": "common", "method": "version", "args": []}
        served = httpx.post(
            f"{info['url']}/jsonrpc",
            json={"jsonrpc": "2.0", "method": "call", "params": version_call, "id": 2},
            timeout=10,
        ).json()["result"]["server_version_info"][0]
        assert served == version
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
