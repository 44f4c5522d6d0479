"""Settings: TOML plus environment, and errors that name file, key and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import load_settings
from agent.errors import ConfigError

GOOD = """
[gateway]
id = "gw-1"
signing_key_file = "/etc/edge-agent/gw.pem"
state_dir = "/var/lib/edge-agent"

[relay]
url = "https://relay.example.com"

[mqtt]
host = "broker.plant"
port = 1883

[[mqtt.subscriptions]]
topic = "plant/line1/+/produced"
qos = 1
event = "production.reported"
dedupe_key = "/msg_id"
[mqtt.subscriptions.fields]
order = "/order"
qty = "/qty"

[health]
listen = "127.0.0.1:8787"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_fixed_keys_load(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.gateway.id == "gw-1"
    assert settings.relay.url == "https://relay.example.com"
    assert settings.mqtt.subscriptions[0].fields == {"order": "/order", "qty": "/qty"}
    assert settings.queue_path == Path("/var/lib/edge-agent/queue.db")
    assert settings.queue.durability == "power"


def test_environment_overrides_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGE_AGENT__MQTT__PORT", "8883")
    monkeypatch.setenv("EDGE_AGENT__GATEWAY__ID", "gw-env")
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.mqtt.port == 8883
    assert settings.mqtt.host == "broker.plant"  # the rest of the section is kept
    assert settings.gateway.id == "gw-env"


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (("port = 1883", "prot = 1883"), "mqtt.prot: unknown key"),
        (("port = 1883", "port = 99999"), "mqtt.port: Input should be less than or equal to 65535"),
        (('qty = "/qty"', 'qty = "qty"'), "mqtt.subscriptions[0].fields"),
        (('event = "production.reported"', 'event = "made.things"'), "unknown event type"),
        (('id = "gw-1"', 'id = "gw 1"'), "gateway.id: String should match pattern"),
        (('listen = "127.0.0.1:8787"', 'listen = "nowhere"'), "health.listen"),
    ],
)
def test_errors_name_file_key_and_reason(
    tmp_path: Path, edit: tuple[str, str], expected: str
) -> None:
    path = write(tmp_path, GOOD.replace(*edit))
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


def test_missing_required_section(tmp_path: Path) -> None:
    path = write(tmp_path, "[relay]\nurl = 'http://x'\n")
    with pytest.raises(ConfigError, match=r"gateway: Field required"):
        load_settings(path)


def test_toml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "[gateway\nid = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML.*line 1"):
        load_settings(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "absent.toml")
