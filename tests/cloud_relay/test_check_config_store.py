"""``cloud-relay check-config`` looks at the store without creating or changing it, a store the
relay cannot write is named plainly, and a PostgreSQL that is down is not a configuration error.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cloud_relay.support import free_port
from tests.cloud_relay.test_cli import relay_cli, write_config
from wire.keys import write_keypair


def listing(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_check_config_does_not_create_a_missing_sqlite_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    if os.geteuid() == 0:
        os.chown(store, 65534, 65534)  # the relay's own user, as a real install has it
    config = tmp_path / "relay.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{store}/inbox.db"\n')
    result = relay_cli("check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert f"SQLite file {store}/inbox.db does not exist yet" in result.stdout
    assert list(store.iterdir()) == []


def test_check_config_leaves_an_existing_sqlite_store_as_it_was(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    write_keypair(tmp_path / "gw.pem")
    added = relay_cli(
        "gateway", "add", "--id", "line-1", "--public-key", f"{tmp_path}/gw.pem.pub", config=config
    )
    assert added.returncode == 0, added.stderr
    (tmp_path / "gw.pem").unlink()
    before = listing(tmp_path)
    result = relay_cli("check-config", config=config)
    assert result.returncode == 0, result.stderr
    assert f"store: SQLite file {tmp_path}/inbox.db (owned by " in result.stdout
    assert listing(tmp_path) == before  # no -wal or -shm file, not a byte changed


def test_check_config_names_a_missing_store_directory(tmp_path: Path) -> None:
    config = tmp_path / "relay.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/absent/inbox.db"\n')
    result = relay_cli("check-config", config=config)
    assert result.returncode == 2
    assert f"{config}: store.url: {tmp_path}/absent/inbox.db: no directory" in result.stderr


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    """``path`` unwritable even to root (the way a file owned by another user is to the relay)."""
    if shutil.which("chattr") is None:
        pytest.skip("chattr is not installed")
    made = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot make a file immutable here: {made.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_store_the_relay_cannot_write_is_named_with_its_owner(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    write_keypair(tmp_path / "gw.pem")
    public = f"{tmp_path}/gw.pem.pub"
    assert (
        relay_cli(
            "gateway", "add", "--id", "line-1", "--public-key", public, config=config
        ).returncode
        == 0
    )
    db = tmp_path / "inbox.db"
    with immutable(db):
        result = relay_cli(
            "gateway", "add", "--id", "line-2", "--public-key", public, config=config
        )
    assert result.returncode == 1
    assert "readonly database" in result.stderr
    assert f"cannot write {db} (owned by uid {db.stat().st_uid})" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_postgresql_that_is_down_is_a_runtime_failure_not_a_config_error(
    tmp_path: Path,
) -> None:
    config = tmp_path / "relay.toml"
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    config.write_text(f'[store]\nurl = "{url}"\n[server]\nlisten = "127.0.0.1:{free_port()}"\n')
    checked = relay_cli("check-config", config=config)
    assert checked.returncode == 1, checked.stderr
    assert "configuration error" not in checked.stderr
    assert f"cannot reach PostgreSQL at {url}" in checked.stderr
    ran = relay_cli("run", config=config)
    assert ran.returncode == 1, ran.stderr
    assert "configuration error" not in ran.stderr
    assert "cannot reach the store (is it running?): " in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_database_that_does_not_exist_is_a_config_error(
    tmp_path: Path, postgres_url: str
) -> None:
    config = tmp_path / "relay.toml"
    absent = postgres_url.rsplit("/", 1)[0] + "/no_such_database_here"
    config.write_text(f'[store]\nurl = "{absent}"\n')
    checked = relay_cli("check-config", config=config)
    assert checked.returncode == 2, checked.stderr
    assert f"{config}: store.url: " in checked.stderr
