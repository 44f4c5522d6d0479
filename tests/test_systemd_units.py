"""The systemd units load cleanly, stay hardened, and hand each program its credentials."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import BaseModel

import agent.config
import cloud_relay.config
from tests.test_example_configs import models_below

ROOT = Path(__file__).resolve().parent.parent
UNITS = {
    "edge-agent": ("EDGE_AGENT__", agent.config.AgentSettings),
    "cloud-relay": ("CLOUD_RELAY__", cloud_relay.config.RelaySettings),
}
#: `systemd-analyze security` scores 0 (locked down) to 10 (exposed); 2 is "OK" territory.
MAX_EXPOSURE = 2.0

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed")


def settings(name: str, *, commented: bool = False) -> list[tuple[str, str]]:
    """The unit's ``Key=value`` lines in order (with ``commented``, also ``#Key=value``)."""
    text = (ROOT / "systemd" / f"{name}.service").read_text()
    prefix = r"#?" if commented else ""
    return re.findall(rf"^{prefix}([A-Z][A-Za-z]+)=(.*)$", text, flags=re.M)


def installed_copy(name: str, tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at a stand-in program: verify checks that it exists."""
    program = tmp_path / "bin" / name
    program.parent.mkdir(exist_ok=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    text = (ROOT / "systemd" / f"{name}.service").read_text()
    unit = tmp_path / f"{name}.service"
    unit.write_text(text.replace(f"/opt/venv/bin/{name} ", f"{program} "))
    return unit


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_unit_passes_systemd_analyze_verify(name: str, tmp_path: Path) -> None:
    unit = installed_copy(name, tmp_path)
    result = subprocess.run(
        [str(analyze), "verify", "--man=no", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@needs_analyze
@pytest.mark.parametrize("name", UNITS)
def test_unit_exposure_is_low(name: str, tmp_path: Path) -> None:
    unit = installed_copy(name, tmp_path)
    result = subprocess.run(
        [str(analyze), "security", "--offline=true", "--no-pager", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if found is None:
        pytest.skip(f"this systemd-analyze cannot score a unit file offline: {result.stderr}")
    assert float(found.group(1)) < MAX_EXPOSURE, result.stdout


@pytest.mark.parametrize("name", UNITS)
def test_unit_notifies_restarts_and_runs_unprivileged(name: str) -> None:
    unit = dict(settings(name))
    assert unit["Type"] == "notify"
    assert unit["WatchdogSec"] and unit["Restart"] == "on-failure"
    assert unit["RestartPreventExitStatus"] == "2"  # a configuration error: restarting won't help
    assert unit["User"] == unit["Group"] == name
    assert unit["StateDirectory"] == unit["ConfigurationDirectory"] == name
    assert unit["ExecStart"].endswith(f"run --config /etc/{name}/{_config_file(name)}")
    for key in ("ProtectSystem", "ProtectHome", "PrivateTmp", "NoNewPrivileges"):
        assert unit[key] in ("yes", "strict"), key
    assert unit["SystemCallFilter"] == "~@privileged @resources"  # after @system-service
    assert "@system-service" in [v for k, v in settings(name) if k == "SystemCallFilter"]
    assert set(unit["RestrictAddressFamilies"].split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}


@pytest.mark.parametrize("name", UNITS)
def test_every_credential_feeds_a_real_setting(name: str) -> None:
    """Each LoadCredential= pairs with an Environment= naming its path and an existing option."""
    prefix, model = UNITS[name]
    lines = settings(name, commented=True)
    credentials = [v.split(":", 1)[0] for k, v in lines if k == "LoadCredential"]
    environment = dict(v.split("=", 1) for k, v in lines if k == "Environment")
    by_path = {path: var for var, path in environment.items()}
    assert credentials, "the unit loads no credential"
    for credential in credentials:
        path = f"/run/credentials/{name}.service/{credential}"
        assert path in by_path, f"no Environment= points a setting at {path}"
        assert _is_option(model, by_path[path].removeprefix(prefix)), by_path[path]


def test_the_agent_gets_its_signing_key_and_the_relay_its_tokens() -> None:
    def loaded(name: str) -> set[str]:
        return {v.split(":", 1)[0] for k, v in settings(name) if k == "LoadCredential"}

    assert loaded("edge-agent") == {"signing-key"}
    assert loaded("cloud-relay") == {"admin-token", "odoo-api-key"}


def _config_file(name: str) -> str:
    return "agent.toml" if name == "edge-agent" else "relay.toml"


def _is_option(model: type[BaseModel], variable: str) -> bool:
    """Whether ``SECTION__KEY`` names a field of the settings (case-insensitive, as read)."""
    *sections, key = variable.lower().split("__")
    section = models_below(model).get(".".join(sections))
    return section is not None and key in section.model_fields
