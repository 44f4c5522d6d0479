"""README's two commands: one line each, working on a stock Debian/Ubuntu ``python3``, and the
test command is exactly what ``.ci/run`` runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
#: A distribution's own interpreter, as a fresh Debian 12 or Ubuntu machine has it.
SYSTEM_PYTHON = Path("/usr/bin/python3")


def readme_command(section: str) -> str:
    """The one line of the first ``sh`` block under README's ``## <section>`` heading."""
    body = README.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"^```sh\n(.*?)^```$", body, re.S | re.M)
    assert block, f"README: no sh block under '## {section}'"
    lines = block.group(1).strip().splitlines()
    assert len(lines) == 1, f"README '## {section}': one command line, not {lines}"
    return lines[0]


COMMANDS = {"Set up and run": "edge-agent demo", "Test": "python -m pytest"}


@pytest.mark.parametrize("section", COMMANDS)
def test_readme_commands_install_into_a_virtual_environment(section: str) -> None:
    parts = readme_command(section).split(" && ")
    assert parts[:2] == ["python3 -m venv .venv", ". .venv/bin/activate"], parts
    assert parts[-1] == COMMANDS[section]
    assert all("pip install" not in part for part in parts[:2])


def test_ci_runs_exactly_the_readme_test_command() -> None:
    shown = subprocess.run(
        [str(ROOT / ".ci/run"), "--print-test-command"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert shown == readme_command("Test") + "\n"


def test_readme_links_the_architecture_document() -> None:
    assert "[docs/architecture.md](docs/architecture.md)" in README
    assert (ROOT / "docs/architecture.md").is_file()
    assert "design notes" not in README


def _externally_managed() -> bool:
    if not SYSTEM_PYTHON.exists():
        return False
    stdlib = subprocess.run(
        [str(SYSTEM_PYTHON), "-c", "import sysconfig; print(sysconfig.get_path('stdlib'))"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    return (Path(stdlib) / "EXTERNALLY-MANAGED").is_file()


@pytest.mark.skipif(not _externally_managed(), reason="no externally-managed /usr/bin/python3")
@pytest.mark.parametrize("section", COMMANDS)
def test_readme_commands_work_on_an_externally_managed_python(section: str, tmp_path: Path) -> None:
    """The command's own steps up to pip, on the distribution's python3 alone: pip answers
    from inside the virtual environment the command made, where the system one refuses."""
    parts = readme_command(section).split(" && ")
    steps = [re.sub(r"\bpip install .*", "pip --version", part) for part in parts[:-1]]
    steps.append('python -c "import sys; print(sys.prefix)"')
    env = {
        "PATH": f"{SYSTEM_PYTHON.parent}:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    result = subprocess.run(
        ["bash", "-c", " && ".join(steps)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    venv = str(tmp_path / ".venv")
    pip_line, prefix = result.stdout.strip().splitlines()[-2:]
    assert venv in pip_line, pip_line
    assert prefix == venv

    refused = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "pip", "install", "--dry-run", "--no-index", "plant-link"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Without the virtual environment: refused (PEP 668), or no pip at all.
    assert refused.returncode != 0
    assert re.search("externally-managed-environment|No module named pip", refused.stderr)
