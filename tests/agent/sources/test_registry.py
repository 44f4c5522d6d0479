"""Source kinds are found by folder; the agent, check-config, the page and /metrics ask them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import generate_latest

import agent.sources
from agent.config import AgentSettings
from agent.health.metrics import build_registry
from agent.health.page import render_page
from agent.health.status import Health
from agent.sources import registry

FAKE_KIND = """
from agent.sources.registry import SourceKind

def _build(config, queue, gateway_id):
    raise AssertionError("not built in this test")

KIND = SourceKind(
    name="modbus",
    title="Modbus TCP device",
    disabled=lambda config: None,
    check=lambda config: None,
    build=_build,
    address_field="device",
    counter_fields=frozenset({"frames"}),
)
"""


@dataclass(frozen=True)
class ModbusStats:
    connected: bool
    since: datetime | None
    device: str
    frames: int


@pytest.fixture
def one_more_folder(tmp_path: Path) -> Iterator[None]:
    """A protocol package next to the agent's own, as a new folder would be."""
    package = tmp_path / "modbus"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "kind.py").write_text(FAKE_KIND)
    agent.sources.__path__.append(str(tmp_path))
    registry.kinds.cache_clear()
    try:
        yield
    finally:
        agent.sources.__path__.remove(str(tmp_path))
        sys.modules.pop("agent.sources.modbus.kind", None)
        sys.modules.pop("agent.sources.modbus", None)
        registry.kinds.cache_clear()


def test_every_kind_has_its_settings_section() -> None:
    names = [kind.name for kind in registry.kinds()]
    assert {"mqtt", "opcua"} <= set(names)
    for kind in registry.kinds():
        assert kind.name in AgentSettings.model_fields, f"{kind.name} has no settings section"


def test_the_plan_says_which_sources_run_and_why_not(tmp_path: Path) -> None:
    settings = AgentSettings.model_validate(
        {
            "gateway": {"id": "gw", "signing_key_file": tmp_path / "k.pem"},
            "opcua": {"endpoint": "opc.tcp://plc:4840", "order": {"value": "MO"}},
        }
    )
    plans = {p.kind.name: p for p in registry.plan(settings)}
    assert plans["opcua"].enabled
    assert not plans["mqtt"].enabled
    assert plans["mqtt"].disabled_because == (
        "[mqtt] names broker 127.0.0.1:1883 but has no [[mqtt.subscriptions]]"
    )


def test_a_new_folder_is_on_the_page_and_in_metrics_without_other_changes(
    one_more_folder: None,
) -> None:
    kind = registry.find("modbus")
    assert kind is not None and kind.title == "Modbus TCP device"
    stats = ModbusStats(True, None, "192.0.2.7:502", 12)
    page = render_page(Health("green", ("ok",)), {"modbus": stats}, {}, datetime.now(UTC))
    assert "Modbus TCP device 192.0.2.7:502" in page
    text = generate_latest(build_registry({"modbus": lambda: stats})).decode()
    assert "# TYPE edge_agent_modbus_frames_total counter" in text


def test_the_registry_imports_no_protocol_library() -> None:
    """The page imports the registry: asyncua and paho must stay unloaded until a source runs."""
    code = (
        "import sys, agent.health.page, agent.sources.registry as r; r.kinds(); "
        "print(sorted(m for m in ('asyncua', 'paho') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_check_config_asks_every_enabled_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from agent.cli import main

    key = tmp_path / "gw.pem"
    main(["keygen", "--out", str(key)])
    path = tmp_path / "agent.toml"
    path.write_text(
        f'[gateway]\nid = "gw"\nsigning_key_file = "{key}"\n[health]\nlisten = ""\n'
        '[sparkplug]\ngroup_id = "line1"\n[sparkplug.order]\nvalue = "MO/1"\n'
        '[[sparkplug.metrics]]\nname = "good"\nnode = "n"\nmetric = "Good"\n'
        'rule = "counter"\nevent = "production.reported"\nstatic = { uom = 5 }\n'
    )
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "[[sparkplug.metrics]] 'good'" in err
