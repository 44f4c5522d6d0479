"""``[health]``: served beyond loopback only with credentials, secrets read before serving."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings
from agent.errors import ConfigError
from agent.health.auth import Credentials
from agent.health.config import HealthConfig
from agent.health.server import HealthServer

AGENT_TOML = """
[gateway]
id = "gw-1"
signing_key_file = "/etc/edge-agent/gw.pem"

[health]
{health}
"""


def load(tmp_path: Path, health: str) -> HealthConfig:
    path = tmp_path / "agent.toml"
    path.write_text(AGENT_TOML.format(health=health))
    return load_settings(path).health


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:8787", "127.0.0.2:8787", "[::1]:8787", "localhost:8787", ""]
)
def test_loopback_needs_no_credentials(tmp_path: Path, listen: str) -> None:
    health = load(tmp_path, f'listen = "{listen}"')
    assert not health.has_credentials
    assert not Credentials.from_config(health).required


@pytest.mark.parametrize("listen", ["0.0.0.0:8787", "[::]:8787", "10.1.2.3:80", "gw1.plant:8787"])
def test_refuses_to_serve_the_network_without_credentials(tmp_path: Path, listen: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, f'listen = "{listen}"')
    message = str(info.value)
    assert f"[health] listen = '{listen}' is not a loopback address" in message
    assert "[health] token_file" in message


@pytest.mark.parametrize(
    "extra",
    [
        'token = "s3cret"',
        'token_file = "/run/credentials/token"',
        'username = "tech"\npassword_file = "/run/credentials/password"',
    ],
)
def test_serves_the_network_with_a_token_or_basic_auth(tmp_path: Path, extra: str) -> None:
    health = load(tmp_path, f'listen = "0.0.0.0:8787"\n{extra}')
    assert health.has_credentials and not health.on_loopback


def test_username_without_password_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[health\] username and password_file"):
        load(tmp_path, 'username = "tech"')


def test_an_empty_token_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[health\] token is empty"):
        load(tmp_path, 'listen = "0.0.0.0:8787"\ntoken = " "')


def test_token_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT__HEALTH__TOKEN", "from-env")
    health = load(tmp_path, 'listen = "0.0.0.0:8787"')
    assert Credentials.from_config(health).token == "from-env"


def test_secrets_are_read_from_their_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("tok\n")
    (tmp_path / "password").write_text("pw\n")
    health = HealthConfig(
        listen="0.0.0.0:8787",
        token_file=tmp_path / "token",
        username="tech",
        password_file=tmp_path / "password",
    )
    assert Credentials.from_config(health) == Credentials("tok", "tech", "pw")


@pytest.mark.parametrize("content", [None, ""])
def test_an_unreadable_or_empty_token_file_stops_the_start_naming_the_key(
    tmp_path: Path, content: str | None
) -> None:
    token_file = tmp_path / "token"
    if content is not None:
        token_file.write_text(content)
    config = HealthConfig(listen="0.0.0.0:8787", token_file=token_file)
    with pytest.raises(ConfigError, match=r"^\[health\] token_file: .*token"):
        HealthServer(config, {}, {})
