"""A clone of the repository is all the tests need: nothing reads or names a file outside it.

``.ci/run`` proves it by running the suite in a fresh clone with nothing beside it; this test
catches the usual ways in early: a path that climbs out of the checkout to a sibling directory,
an environment variable naming such a directory, and a data file a test reads that git does not
track.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Spellings of a reach outside the checkout: a sibling "shared" directory (``../shared``,
#: ``parent / "shared"``), the variable that pointed at it, and absolute home directories of a
#: particular machine.
OUTSIDE = re.compile(
    r"""\.\./shared\b|/\s*["']shared["']|\bSHARED_DIR\b|\bshared/(odoo|DESIGN|STYLE|LIMITS)\b|/work/"""
)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".sh", ".service", ".txt", ".cfg", ".ini", ".yml", ".yaml"}


def _tracked() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def _texts(files: list[Path]) -> list[Path]:
    names = {"Dockerfile", "run"}
    return [f for f in files if f.suffix in TEXT_SUFFIXES or f.name in names]


def test_no_file_reaches_outside_the_checkout() -> None:
    this = Path(__file__).resolve()
    hits = []
    for path in _texts(_tracked()):
        if path == this or not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if OUTSIDE.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not hits, "reaches outside the checkout:\n" + "\n".join(hits)


def test_recorded_odoo_sessions_are_tracked() -> None:
    tracked = set(_tracked())
    recordings = ROOT / "tests/cloud_relay/odoo/sandbox/recordings"
    assert recordings / "odoo-18.0-probe.jsonl" in tracked
    assert recordings / "README.md" in tracked
