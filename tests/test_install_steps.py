"""README's install steps, run as written in a scratch root, so README and the programs agree.

The ``sh`` blocks of "### The relay, first" and "### The gateway" run in order under ``bash -e``
with every absolute path of the system (``/etc``, ``/opt``, ``/var``, ``/usr/local``, ``/tmp``,
``/run``) moved under a scratch directory. What needs a real machine's root is stood in for by
small programs on ``PATH`` that record how they were called: ``apt-get``, ``useradd``,
``systemctl``, ``runuser`` and ``scp`` (which then do the harmless part: run the command, copy
the file), ``install`` (which drops ``-o``/``-g``) and ``python3 -m venv`` (a directory whose
``pip`` records its arguments and whose ``edge-agent``/``cloud-relay`` are the programs under
test). ``edge-agent keygen``, both ``check-config`` and ``cloud-relay gateway add`` are real.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import stat
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
SECTIONS = ("### The relay, first", "### The gateway")
#: Absolute paths of the system that the steps write to, moved under the scratch root.
SYSTEM_PATH = re.compile(r"(?<![\w$.-])/(etc|opt|var|usr/local|tmp|run)/")


def install_blocks() -> list[str]:
    """The ``sh`` blocks of the install sections, in README order."""
    install = README.split("\n## Install on a gateway\n", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for heading in SECTIONS:
        assert f"\n{heading}\n" in install, f"README: no '{heading}' under Install on a gateway"
        body = install.split(f"\n{heading}\n", 1)[1].split("\n### ", 1)[0]
        blocks += re.findall(r"^```sh\n(.*?)^```$", body, re.S | re.M)
    assert blocks
    return blocks


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


def _fake_bin(scratch: Path, log: Path) -> Path:
    bin_dir = scratch / "fake-bin"
    bin_dir.mkdir()
    record = f'printf "%s\\n" "$(basename "$0") $*" >> {shlex.quote(str(log))}'
    for name in ("apt-get", "useradd", "systemctl"):
        _write(bin_dir / name, f"#!/bin/sh\n{record}\n")
    # runuser -u USER -- COMMAND...: as root here, so only the command runs.
    _write(bin_dir / "runuser", f'#!/bin/sh\n{record}\nshift 3\nexec "$@"\n')
    # scp HOST:PATH DEST: the "remote" path is in the same scratch root.
    _write(bin_dir / "scp", f'#!/bin/sh\n{record}\nexec cp "${{1#*:}}" "$2"\n')
    _write(
        bin_dir / "install",
        "#!/bin/sh\n"
        'for a in "$@"; do shift; case "$skip$a" in\n'
        '  1*) skip= ;; -o|-g) skip=1 ;; *) set -- "$@" "$a" ;; esac; done\n'
        'exec /usr/bin/install "$@"\n',
    )
    python = shlex.quote(sys.executable)
    # python3 -m venv DIR: a DIR/bin whose pip records and whose programs are those under test.
    template = bin_dir / "venv-template"
    template.mkdir()
    _write(template / "pip", f'#!/bin/sh\nprintf "%s\\n" "pip $*" >> {shlex.quote(str(log))}\n')
    _write(template / "edge-agent", f'#!/bin/sh\nexec {python} -m agent "$@"\n')
    _write(template / "cloud-relay", f'#!/bin/sh\nexec {python} -m cloud_relay "$@"\n')
    _write(
        bin_dir / "python3",
        "#!/bin/sh\n"
        'if [ "$1 $2" = "-m venv" ]; then\n'
        f"  {record}\n"
        f'  rm -rf "$3" && mkdir -p "$3" && cp -a {shlex.quote(str(template))} "$3/bin"\n'
        "  exit 0\n"
        "fi\n"
        f'exec {python} "$@"\n',
    )
    return bin_dir


def test_readme_install_steps_run_in_order(tmp_path: Path) -> None:
    scratch = tmp_path / "root"
    for folder in ("etc/systemd/system", "opt", "var/lib", "usr/local/bin", "tmp", "run"):
        (scratch / folder).mkdir(parents=True)
    log = tmp_path / "calls.log"
    log.touch()
    fake_bin = _fake_bin(tmp_path, log)
    script = "\n".join(SYSTEM_PATH.sub(r"$ROOT/\1/", block) for block in install_blocks())
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("EDGE_AGENT__", "CLOUD_RELAY__"))
    }
    env.update(
        ROOT=str(scratch),
        PATH=f"{fake_bin}:{scratch}/usr/local/bin:/usr/bin:/bin",
        # The settings files keep the system paths; the environment (which wins) moves the
        # ones the commands touch into the scratch root, as a systemd unit's Environment= does.
        EDGE_AGENT__GATEWAY__SIGNING_KEY_FILE=f"{scratch}/etc/edge-agent/gateway.pem",
        EDGE_AGENT__GATEWAY__STATE_DIR=f"{scratch}/var/lib/edge-agent",
        CLOUD_RELAY__STORE__URL=f"sqlite:///{scratch}/var/lib/cloud-relay/inbox.db",
        CLOUD_RELAY__ADMIN__TOKEN_FILE=f"{scratch}/etc/cloud-relay/admin-token",
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}\n--- script:\n{script}"
    calls = log.read_text().splitlines()

    # The relay's host gets the relay's stack, the gateway the agent's.
    assert "pip install .[relay]" in calls and "pip install .[agent]" in calls
    assert calls.index("pip install .[relay]") < calls.index("pip install .[agent]")
    users = [c.split()[-1] for c in calls if c.startswith("useradd ")]
    assert users == ["cloud-relay", "edge-agent"]
    assert "systemctl enable --now cloud-relay" in calls
    assert "systemctl enable --now edge-agent" in calls
    assert any(c.startswith("runuser -u cloud-relay -- cloud-relay check-config") for c in calls)

    for unit in ("cloud-relay", "edge-agent"):
        installed = scratch / f"etc/systemd/system/{unit}.service"
        assert installed.read_text() == (ROOT / f"systemd/{unit}.service").read_text()
        exec_start = re.search(r"^ExecStart=(\S+)", installed.read_text(), re.M)
        assert exec_start, unit
        # The unit starts the program where README's steps installed it.
        assert (scratch / exec_start.group(1).lstrip("/")).is_file(), exec_start.group(1)

    key = scratch / "etc/edge-agent/gateway.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    token = scratch / "etc/cloud-relay/admin-token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert len(token.read_text().strip()) >= 32
    assert "configuration is valid: gateway line1-gw" in result.stdout

    # The key keygen made is the one the relay now holds for the gateway README names.
    key_id = re.search(r"^key id:\s+(\S+)$", result.stdout, re.M)
    assert key_id, result.stdout
    relay_toml = str(scratch / "etc/cloud-relay/relay.toml")
    listing = subprocess.run(
        [sys.executable, "-m", "cloud_relay", "gateway", "list", "--json", "--config", relay_toml],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    gateways = json.loads(listing.stdout)
    assert [g["gateway_id"] for g in gateways] == ["line1-gw"]
    assert [k["key_id"] for k in gateways[0]["keys"]] == [key_id.group(1)]
