"""What each install carries and what each command loads.

The plain install holds what both programs share; ``[agent]`` and ``[relay]`` add each program's
stack. These tests read ``pyproject.toml`` and the imports of every module, and run the commands
in fresh interpreters with the other program's stack made unimportable.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Declared for the relay's scheduled jobs, which are written against it next.
DECLARED_AHEAD = {"apscheduler"}
#: Imported directly, installed and pinned by the distribution it belongs to.
PART_OF = {"pydantic-core": "pydantic"}


def _normal(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _names(requirements: list[str]) -> set[str]:
    names = set()
    for text in requirements:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
        assert match, text
        names.add(_normal(match.group()))
    return names


CORE = _names(PYPROJECT["project"]["dependencies"])
EXTRAS = {
    name: _names([r for r in reqs if not r.startswith("plant-link")])
    for name, reqs in PYPROJECT["project"]["optional-dependencies"].items()
}


def _imported_distributions(folder: Path) -> dict[str, set[str]]:
    """Distribution name -> modules of ``folder`` importing it (at any depth of the module)."""
    by_module = {m: {_normal(d) for d in ds} for m, ds in packages_distributions().items()}
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops = [alias.name.partition(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                tops = [node.module.partition(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top in (
                    "agent",
                    "cloud_relay",
                    "wire",
                    "runtime",
                ):
                    continue
                for dist in by_module.get(top, {top}):
                    dist = PART_OF.get(dist, dist)
                    found.setdefault(dist, set()).add(str(path.relative_to(ROOT)))
    return found


def _without_demo(found: dict[str, set[str]]) -> dict[str, set[str]]:
    kept = {d: {m for m in ms if not m.startswith("agent/demo/")} for d, ms in found.items()}
    return {d: ms for d, ms in kept.items() if ms}


def test_every_declared_runtime_dependency_is_imported() -> None:
    runtime = CORE | EXTRAS["agent"] | EXTRAS["relay"]
    imported: set[str] = set()
    for folder in ("agent", "cloud_relay", "wire", "runtime"):
        imported |= set(_imported_distributions(ROOT / folder))
    unused = runtime - imported - DECLARED_AHEAD
    assert not unused, f"declared in pyproject.toml, imported nowhere: {sorted(unused)}"


def test_each_program_imports_only_what_its_install_declares() -> None:
    allowed = {
        "wire": CORE,
        "runtime": CORE,
        "agent": CORE | EXTRAS["agent"],
        "cloud_relay": CORE | EXTRAS["relay"],
    }
    for folder, declared in allowed.items():
        found = _imported_distributions(ROOT / folder)
        if folder == "agent":
            demo = {d for d, ms in found.items() if any(m.startswith("agent/demo/") for m in ms)}
            assert demo <= CORE | EXTRAS["agent"] | EXTRAS["relay"], demo
            found = _without_demo(found)
        undeclared = {d: sorted(ms) for d, ms in found.items() if d not in declared}
        assert not undeclared, f"{folder} imports what its install lacks: {undeclared}"


def test_all_extra_is_both_programs() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert extras["all"] == ["plant-link[agent,relay]"]
    assert "plant-link[all]" in extras["test"]
    assert {"fastapi", "asyncpg", "uvicorn"} & EXTRAS["agent"] == set()
    assert {"fastapi", "asyncpg"} <= EXTRAS["relay"]


#: Runs in a fresh interpreter: makes ``BLOCKED`` unimportable, runs the code, prints what loaded.
_HARNESS = textwrap.dedent(
    """
    import importlib.abc, json, sys
    BLOCKED = set(json.loads(sys.argv[1]))

    class Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.partition(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None

    sys.meta_path.insert(0, Blocker())
    source, sys.argv = sys.argv[2], sys.argv[3:]
    code = 0
    try:
        exec(compile(source, "<run>", "exec"), {"__name__": "__run__"})
    except SystemExit as exc:
        code = exc.code
    print("\\n" + json.dumps(sorted(sys.modules)), file=sys.stderr)
    sys.exit(code)
    """
)


def _run(code: str, *args: str, blocked: set[str] = frozenset()) -> tuple[int, str, set[str]]:
    result = subprocess.run(
        [sys.executable, "-c", _HARNESS, json.dumps(sorted(blocked)), code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    *text, modules = result.stderr.rstrip("\n").rsplit("\n", 1)
    return result.returncode, result.stdout + "".join(text), set(json.loads(modules))


def _imports_every_module(package: str, skip: str = "-") -> str:
    return textwrap.dedent(
        f"""
        import importlib, pkgutil, {package}
        for info in pkgutil.walk_packages({package}.__path__, "{package}."):
            if not info.name.startswith({skip!r}) and not info.name.endswith(".__main__"):
                importlib.import_module(info.name)
        """
    )


def test_the_agent_never_imports_the_relay_or_its_stack() -> None:
    code, out, modules = _run(
        _imports_every_module("agent", skip="agent.demo."),
        "python",
        blocked={"fastapi", "asyncpg", "apscheduler", "cloud_relay"},
    )
    assert code == 0, out
    assert "agent.app" in modules and "agent.sources.opcua.source" in modules


def test_the_relay_never_imports_the_agent_or_its_stack() -> None:
    code, out, modules = _run(
        _imports_every_module("cloud_relay"), "python", blocked={"asyncua", "paho", "agent"}
    )
    assert code == 0, out
    assert "cloud_relay.app" in modules and "cloud_relay.odoo.sandbox" in modules


MAIN_AGENT = "import sys; from agent.cli import main; sys.exit(main())"
MAIN_RELAY = "import sys; from cloud_relay.cli import main; sys.exit(main())"

#: Modules no command that only parses arguments or checks settings should load.
STACKS = ("asyncua", "paho", "uvicorn", "starlette", "fastapi", "httpx", "asyncpg", "aiosqlite")


#: What checking settings never needs: the sources' protocols, the servers, the demo.
SOURCE_STACKS = ("asyncua", "paho", "uvicorn", "starlette", "fastapi")


def _stacks(modules: set[str], stacks: tuple[str, ...] = STACKS) -> set[str]:
    return {m for m in modules if m.partition(".")[0] in stacks or m.startswith("agent.demo.")}


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"], ["run", "--help"]])
def test_edge_agent_help_loads_no_protocol_stack(argv: list[str]) -> None:
    code, out, modules = _run(MAIN_AGENT, "edge-agent", *argv)
    assert code == 0, out
    assert "usage: edge-agent" in out
    assert _stacks(modules) == set()


def test_edge_agent_help_under_importtime_lists_no_stack() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "agent", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()}
    assert "agent.cli" in loaded
    assert _stacks(loaded) == set()


def test_edge_agent_check_config_loads_no_source_stack(tmp_path: Path) -> None:
    key = tmp_path / "gateway.pem"
    assert _run(MAIN_AGENT, "x", "keygen", "--out", str(key))[0] == 0
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[gateway]\nid = "line1-gw"\nsigning_key_file = "{key}"\nstate_dir = "{tmp_path}"\n'
        '[mqtt]\nhost = "127.0.0.1"\n'
    )
    code, out, modules = _run(MAIN_AGENT, "x", "check-config", "--config", str(config))
    assert code == 0, out
    assert "configuration is valid" in out
    assert _stacks(modules, SOURCE_STACKS) == set()


@pytest.mark.parametrize("argv", [["--help"], ["gateway", "add", "--help"]])
def test_cloud_relay_help_loads_no_server_stack(argv: list[str]) -> None:
    code, out, modules = _run(MAIN_RELAY, "cloud-relay", *argv)
    assert code == 0, out
    assert "usage: cloud-relay" in out
    assert _stacks(modules) == set()


def test_demo_without_both_stacks_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import agent.demo
    from agent.cli import main

    monkeypatch.setattr(agent.demo, "DEMO_MODULES", ("asyncua", "no_such_stack"))
    assert main(["demo", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "lacks no_such_stack: pip install 'plant-link[all]'" in err


def test_agent_without_its_stack_names_the_extra(tmp_path: Path) -> None:
    key = tmp_path / "gateway.pem"
    assert _run(MAIN_AGENT, "x", "keygen", "--out", str(key))[0] == 0
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[gateway]\nid = "line1-gw"\nsigning_key_file = "{key}"\nstate_dir = "{tmp_path}"\n'
        '[health]\nlisten = ""\n[[mqtt.subscriptions]]\ntopic = "plant/x"\n'
        'event = "material.consumed"\n[mqtt.subscriptions.fields]\n'
        'order = "/order"\nproduct = "/product"\nqty = "/qty"\n'
    )
    code, out, _ = _run(MAIN_AGENT, "edge-agent", "run", "--config", str(config), blocked={"paho"})
    assert code == 1, out
    assert "edge-agent: run needs paho" in out and "pip install 'plant-link[agent]'" in out


def test_relay_without_its_stack_names_the_extra(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/inbox.db"\n')
    code, out, _ = _run(
        MAIN_RELAY,
        "cloud-relay",
        "run",
        "--config",
        str(config),
        blocked={"fastapi"},
    )
    assert code == 1, out
    assert "cloud-relay: run needs fastapi" in out and "pip install 'plant-link[relay]'" in out
