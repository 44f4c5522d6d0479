"""``python -m cloud_relay``: exit codes, gateway registry commands, check-config and run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from cloud_relay.app import bind_socket
from tests.cloud_relay.support import Gateway, batch_body, free_port, signed_headers
from wire.batch import BATCH_PATH
from wire.keys import generate_private_key, key_id, write_keypair

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT_SECONDS = 60


def relay_cli(
    *args: str, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "cloud_relay", *args]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.run(
        command,
        cwd=ROOT,
        env=_env(env),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def _env(extra: dict[str, str] | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUD_RELAY__")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra or {})
    return env


def write_config(directory: Path, body: str = "") -> Path:
    path = directory / "relay.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{directory}/inbox.db"\n{body}')
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path)


@pytest.fixture
def public_key(tmp_path: Path) -> tuple[Path, str]:
    private = write_keypair(tmp_path / "gateway.pem")
    return tmp_path / "gateway.pem.pub", key_id(private.public_key())


def test_gateway_add_list_revoke(config: Path, public_key: tuple[Path, str]) -> None:
    pub_path, kid = public_key
    added = relay_cli(
        "gateway", "add", "--id", "line-1", "--public-key", str(pub_path), config=config
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == kid

    add = ("gateway", "add", "--public-key", str(pub_path), "--id")
    again = relay_cli(*add, "line-1", config=config)
    assert again.returncode == 0 and again.stdout.strip() == kid
    stolen = relay_cli(*add, "line-2", config=config)
    assert stolen.returncode == 1, stolen.stderr

    listed = relay_cli("gateway", "list", config=config)
    assert listed.returncode == 0
    assert "line-1" in listed.stdout and kid in listed.stdout and "active" in listed.stdout

    as_json = json.loads(relay_cli("gateway", "list", "--json", config=config).stdout)
    assert as_json[0]["gateway_id"] == "line-1"
    assert as_json[0]["keys"] == [
        {"key_id": kid, "added_at": as_json[0]["keys"][0]["added_at"], "revoked_at": None}
    ]

    revoked = relay_cli("gateway", "revoke", "--key-id", kid, config=config)
    assert revoked.returncode == 0, revoked.stderr
    again = relay_cli("gateway", "revoke", "--key-id", kid, config=config)
    assert again.returncode == 0 and "already revoked" in again.stdout
    keys = json.loads(relay_cli("gateway", "list", "--json", config=config).stdout)[0]["keys"]
    assert keys[0]["revoked_at"] is not None


def test_gateway_revoke_whole_gateway(config: Path, tmp_path: Path) -> None:
    kids = []
    for name in ("a.pem", "b.pem"):
        write_keypair(tmp_path / name)
        result = relay_cli(
            "gateway",
            "add",
            "--id",
            "line-1",
            "--public-key",
            str(tmp_path / f"{name}.pub"),
            config=config,
        )
        kids.append(result.stdout.strip())
    revoked = relay_cli("gateway", "revoke", "line-1", config=config)
    assert revoked.returncode == 0
    assert "revoked 2 key(s)" in revoked.stdout
    keys = json.loads(relay_cli("gateway", "list", "--json", config=config).stdout)[0]["keys"]
    assert sorted(k["key_id"] for k in keys) == sorted(kids)
    assert all(k["revoked_at"] for k in keys)


def test_revoking_what_does_not_exist_fails(config: Path) -> None:
    assert relay_cli("gateway", "revoke", "ghost", config=config).returncode == 1
    assert relay_cli("gateway", "revoke", "--key-id", "nokey", config=config).returncode == 1


def test_gateway_add_refuses_bad_input(
    config: Path, tmp_path: Path, public_key: tuple[Path, str]
) -> None:
    bad_id = relay_cli(
        "gateway", "add", "--id", "no spaces!", "--public-key", str(public_key[0]), config=config
    )
    assert bad_id.returncode == 2
    assert "--id" in bad_id.stderr
    (tmp_path / "junk.pub").write_text("not a key")
    bad_key = relay_cli(
        "gateway",
        "add",
        "--id",
        "line-1",
        "--public-key",
        str(tmp_path / "junk.pub"),
        config=config,
    )
    assert bad_key.returncode == 2
    assert "junk.pub" in bad_key.stderr
    missing = relay_cli(
        "gateway", "add", "--id", "line-1", "--public-key", str(tmp_path / "nope"), config=config
    )
    assert missing.returncode == 2
    usage = relay_cli("gateway", "revoke", "line-1", "--key-id", "k", config=config)
    assert usage.returncode == 2


def test_check_config_accepts_a_good_file(config: Path) -> None:
    result = relay_cli("check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_example_config_is_the_defaults() -> None:
    from cloud_relay.config import RelaySettings, load_settings

    assert load_settings(ROOT / "config" / "relay.example.toml") == RelaySettings()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("[server]\nmax_skew_seconds = -1\n", "server.max_skew_seconds"),
        ("[server]\nlisten = 'nowhere'\n", "server.listen"),
        ("[server]\nmax_body_byte = 10\n", "server.max_body_byte: unknown key"),
        ("[admin]\ntoken_file = '/nonexistent/token'\n", "token_file"),
    ],
)
def test_check_config_names_file_and_key(tmp_path: Path, body: str, expected: str) -> None:
    config = write_config(tmp_path, body)
    result = relay_cli("check-config", config=config)
    assert result.returncode == 2
    assert expected in result.stderr
    if "unknown key" in expected or "server." in expected:
        assert str(config) in result.stderr


def test_check_config_without_file_or_reachable_store(tmp_path: Path) -> None:
    missing = relay_cli("check-config", config=tmp_path / "absent.toml")
    assert missing.returncode == 2
    assert "absent.toml: file not found" in missing.stderr
    config = tmp_path / "relay.toml"
    config.write_text(f'[store]\nurl = "postgresql://postgres@127.0.0.1:{free_port()}/x"\n')
    unreachable = relay_cli("check-config", config=config)
    # A store that is down is a runtime failure (exit 1), not the configuration's fault.
    assert unreachable.returncode == 1
    assert "cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:" in unreachable.stderr


def test_environment_overrides_the_file(
    config: Path, postgres_url: str, public_key: tuple[Path, str]
) -> None:
    env = {"CLOUD_RELAY__STORE__URL": postgres_url}
    added = relay_cli(
        "gateway",
        "add",
        "--id",
        "line-9",
        "--public-key",
        str(public_key[0]),
        config=config,
        env=env,
    )
    assert added.returncode == 0, added.stderr
    in_postgres = json.loads(relay_cli("gateway", "list", "--json", config=config, env=env).stdout)
    in_sqlite = json.loads(relay_cli("gateway", "list", "--json", config=config).stdout)
    assert [g["gateway_id"] for g in in_postgres] == ["line-9"]
    assert in_sqlite == []


def test_run_serves_and_stops_gracefully_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path, f'[server]\nlisten = "127.0.0.1:{port}"\n[log]\nformat = "json"\n'
    )
    private = generate_private_key()
    gateway = Gateway("line-1", private)
    (tmp_path / "k.pub").write_text(gateway.public_pem)
    assert (
        relay_cli(
            "gateway",
            "add",
            "--id",
            "line-1",
            "--public-key",
            str(tmp_path / "k.pub"),
            config=config,
        ).returncode
        == 0
    )

    process = subprocess.Popen(
        [sys.executable, "-m", "cloud_relay", "run", "--config", str(config)],
        cwd=ROOT,
        env=_env(None),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(base, process)
        url = base + BATCH_PATH
        body = batch_body("line-1", 1, 2)
        response = httpx.post(url, content=body, headers=signed_headers(gateway, url, body))
        assert response.json() == {"acked_seq": 2}
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, stderr
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    messages = [r["msg"] for r in records]
    assert any("listening on" in m for m in messages)
    assert messages[-1] == "cloud relay stopped"


def test_run_on_a_busy_port_fails_with_exit_1(tmp_path: Path) -> None:
    sock = bind_socket("127.0.0.1:0")
    try:
        port = sock.getsockname()[1]
        config = write_config(tmp_path, f'[server]\nlisten = "127.0.0.1:{port}"\n')
        result = relay_cli("run", config=config)
    finally:
        sock.close()
    assert result.returncode == 1
    assert f"127.0.0.1:{port}" in result.stderr


def _wait_healthy(base: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[1]
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError("relay did not become healthy")


def test_usage_errors_exit_2() -> None:
    assert relay_cli().returncode == 2
    assert relay_cli("gateway").returncode == 2
    assert relay_cli("frobnicate").returncode == 2


def test_listening_socket_turns_nagle_off() -> None:
    # asyncio sets TCP_NODELAY only on sockets created with IPPROTO_TCP; without it every
    # keep-alive answer waits for the client's delayed ACK.
    sock = bind_socket("127.0.0.1:0")
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()


def test_a_key_id_starting_with_a_dash_is_taken_as_the_value(tmp_path: Path) -> None:
    from cloud_relay.cli import _join_key_ids

    assert _join_key_ids(["gateway", "revoke", "--key-id", "-Ab3"]) == [
        "gateway",
        "revoke",
        "--key-id=-Ab3",
    ]
    assert _join_key_ids(["--key-id"]) == ["--key-id"]
