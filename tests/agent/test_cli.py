"""``edge-agent`` commands as a person or a script runs them: output and exit codes."""

from __future__ import annotations

import asyncio
import json
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_settings
from agent.queue.model import NewEvent
from agent.queue.store import QueueStore


def config(tmp_path: Path, key: Path, extra: str = "") -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[gateway]\nid = "gw-cli"\nsigning_key_file = "{key}"\nstate_dir = "{tmp_path}/state"\n'
        f'[health]\nlisten = ""\n{extra}'
    )
    return path


def test_keygen_writes_a_private_key_only_the_owner_can_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "gw.pem"
    assert main(["keygen", "--out", str(key)]) == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert (tmp_path / "gw.pem.pub").read_text().startswith("-----BEGIN PUBLIC KEY-----")
    out = capsys.readouterr().out
    assert "key id:" in out
    # Never overwrite a key: that would orphan the gateway's registration at the relay.
    assert main(["keygen", "--out", str(key)]) == 2
    assert str(key) in capsys.readouterr().err


def test_check_config_accepts_a_good_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "gw.pem"
    main(["keygen", "--out", str(key)])
    assert main(["check-config", "--config", str(config(tmp_path, key))]) == 0
    assert "configuration is valid: gateway gw-cli" in capsys.readouterr().out


def test_check_config_names_file_key_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "gw.pem"
    main(["keygen", "--out", str(key)])
    path = config(tmp_path, key, "[queue]\ndurability = 'sometimes'\n")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: queue.durability: Input should be 'power' or 'process'" in err


def test_check_config_refuses_a_missing_key_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, tmp_path / "absent.pem")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "signing_key_file" in capsys.readouterr().err


async def test_queue_stats_json_reads_a_live_queue(tmp_path: Path) -> None:
    key = tmp_path / "gw.pem"
    main(["keygen", "--out", str(key)])
    path = config(tmp_path, key)
    settings = load_settings(path)
    settings.gateway.state_dir.mkdir()
    queue = await QueueStore.open(settings.queue_path, "gw-cli", settings.queue)
    event = NewEvent(
        "production.reported", datetime.now(UTC), "test", {"order": "MO/1", "qty": 1.0}
    )
    await queue.enqueue([event, event])
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent", "queue-stats", "--json", "--config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stats = json.loads(done.stdout)
    for field in ("pending", "first_seq", "last_seq", "bytes", "oldest_age_seconds", "rejected"):
        assert field in stats
    assert stats["pending"] == 2
    assert (stats["first_seq"], stats["last_seq"]) == (1, 2)
    await queue.close()


def test_queue_stats_without_a_queue_says_so(tmp_path: Path) -> None:
    key = tmp_path / "gw.pem"
    main(["keygen", "--out", str(key)])
    done = subprocess.run(
        [sys.executable, "-m", "agent", "queue-stats", "--config", str(config(tmp_path, key))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "no queue file" in done.stderr


def test_unknown_command_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent", "frobnicate"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 2


def test_check_config_refuses_a_malformed_opcua_node_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "gw.pem"
    main(["keygen", "--out", str(key)])
    opcua = (
        '[opcua]\nendpoint = "opc.tcp://127.0.0.1:4840/"\n[opcua.order]\nvalue = "MO/1"\n'
        '[[opcua.nodes]]\nname = "good"\nnamespace_uri = "urn:x"\nidentifier = "Line1.Good"\n'
        'rule = "counter"\nevent = "production.reported"\n'
    )
    assert main(["check-config", "--config", str(config(tmp_path, key, opcua))]) == 2
    assert "Line1.Good" in capsys.readouterr().err
