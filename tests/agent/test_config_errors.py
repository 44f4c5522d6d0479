"""Configuration errors a person commissioning a gateway meets: each names where to look."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_settings
from agent.errors import ConfigError

SUBSCRIPTION = """
[[mqtt.subscriptions]]
topic = "plant/+/produced"
event = "production.reported"
[mqtt.subscriptions.fields]
order = "/order"
qty = "qty"
"""


def config(tmp_path: Path, key: Path, *, state_dir: Path | None = None, extra: str = "") -> Path:
    path = tmp_path / "agent.toml"
    state = state_dir if state_dir is not None else tmp_path / "state"
    path.write_text(
        f'[gateway]\nid = "gw-cfg"\nsigning_key_file = "{key}"\nstate_dir = "{state}"\n'
        f'[health]\nlisten = ""\n{extra}'
    )
    return path


@pytest.fixture
def key(tmp_path: Path) -> Path:
    out = tmp_path / "gw.pem"
    assert main(["keygen", "--out", str(out)]) == 0
    return out


def test_an_environment_typo_names_the_variable_not_the_file(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config(tmp_path, key)
    monkeypatch.setenv("EDGE_AGENT__RELAY__ULR", "http://relay.example")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    text = str(info.value)
    assert "environment variable EDGE_AGENT__RELAY__ULR: relay.ulr: unknown key" in text
    assert f"{path}: relay.ulr" not in text


def test_a_bad_value_from_the_environment_names_the_variable(
    tmp_path: Path, key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGE_AGENT__QUEUE__DURABILITY", "sometimes")
    with pytest.raises(ConfigError, match="environment variable EDGE_AGENT__QUEUE__DURABILITY"):
        load_settings(config(tmp_path, key))


def test_a_json_pointer_error_names_the_data_field(tmp_path: Path, key: Path) -> None:
    path = config(tmp_path, key, extra=SUBSCRIPTION)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert f"{path}: mqtt.subscriptions[0].fields.qty: " in str(info.value)
    assert "'qty' is not a JSON Pointer" in str(info.value)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("relay.example.com", "must start with http:// or https://"),
        ("ftp://relay.example.com", "must start with http:// or https://"),
        ("https://", "names no host"),
        ("https://relay.example.com/v1", "ends in an API path"),
        ("https://relay.example.com/v1/batches", "ends in an API path"),
        ("https://relay.example.com/?x=1", "query or fragment"),
        ("https://relay.example.com:notaport", "is not a URL"),
    ],
)
def test_check_config_refuses_a_relay_url_that_is_not_a_base_url(
    tmp_path: Path, key: Path, url: str, why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, key, extra=f'[relay]\nurl = "{url}"\n')
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: relay.url: " in err
    assert why in err


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "https://relay.example.com/plant/"])
def test_check_config_takes_a_base_url_with_or_without_a_proxy_prefix(
    tmp_path: Path, key: Path, url: str
) -> None:
    path = config(tmp_path, key, extra=f'[relay]\nurl = "{url}"\n')
    assert main(["check-config", "--config", str(path)]) == 0


def test_a_missing_key_file_names_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config(tmp_path, tmp_path / "absent.pem")
    assert main(["check-config", "--config", str(path)]) == 2
    assert f"{path}: gateway.signing_key_file: " in capsys.readouterr().err
    done = _run_agent(path)
    assert done.returncode == 2, done.stderr
    assert f"{path}: gateway.signing_key_file: " in done.stderr


def _run_agent(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", "run", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_state_dir_that_cannot_be_made_is_a_configuration_error(
    tmp_path: Path, key: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    state_dir = blocker / "state"
    path = config(tmp_path, key, state_dir=state_dir)
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: gateway.state_dir: {state_dir}: " in err
    done = _run_agent(path)
    assert done.returncode == 2, done.stderr
    assert f"gateway.state_dir: {state_dir}: " in done.stderr
    assert "Traceback" not in done.stderr


def test_a_state_dir_that_cannot_be_written_is_a_configuration_error(
    tmp_path: Path, key: Path
) -> None:
    # /proc refuses new entries even to root: a directory nobody can write in.
    path = config(tmp_path, key, state_dir=Path("/proc/self/edge-agent-state"))
    done = _run_agent(path)
    assert done.returncode == 2, done.stderr
    assert "gateway.state_dir: /proc/self/edge-agent-state: cannot create it" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_config_does_not_create_the_state_dir(tmp_path: Path, key: Path) -> None:
    path = config(tmp_path, key)
    assert main(["check-config", "--config", str(path)]) == 0
    assert not (tmp_path / "state").exists()
