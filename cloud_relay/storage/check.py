"""``cloud-relay check-config``'s look at the store: reach it without creating or changing it.

Run as root, a check that opened the store the normal way would create the SQLite file (and its
WAL files) owned by root, which the relay, running as its own user, then cannot write. So a
missing file is only checked for a directory the relay could create it in, an existing one is
opened read-only, and PostgreSQL gets one connection and ``SELECT 1`` (no migration).

Errors are sorted as the command's exit code needs them: :class:`ConfigError` for what the
configuration must fix (no such directory, a bad password, no such database),
:class:`TransientError` for a store that is down right now.
"""

from __future__ import annotations

import asyncio
import pwd
import sqlite3
from pathlib import Path
from urllib.parse import quote

import asyncpg

from cloud_relay.config import StoreConfig
from cloud_relay.errors import ConfigError, TransientError
from cloud_relay.inbox.factory import sqlite_path
from cloud_relay.storage.postgres import redact_url

#: Longest the check waits for PostgreSQL to accept a connection.
CONNECT_TIMEOUT_SECONDS = 10.0


async def check_store(config: StoreConfig) -> str:
    """Say in words what the store is, or raise why the relay could not use it."""
    if config.url.startswith("sqlite:///"):
        return await asyncio.to_thread(_check_sqlite, sqlite_path(config.url))
    return await _check_postgres(config.url)


def _check_sqlite(path: Path) -> str:
    directory = path.parent
    if not directory.is_dir():
        raise ConfigError(f"store.url: {path}: no directory {directory}")
    if not path.exists():
        owner = _owner(directory)
        return (
            f"SQLite file {path} does not exist yet; the relay creates it in {directory} "
            f"(owned by {owner}) on its first start"
        )
    # mode=ro alone would still create the WAL's -wal and -shm files (owned by whoever runs
    # the check); immutable=1 reads the main file only, which is all a check needs.
    uri = f"file:{quote(str(path.resolve()))}?mode=ro&immutable=1"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=5.0)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"store.url: {path}: not a readable SQLite database: {exc}") from exc
    return f"SQLite file {path} (owned by {_owner(path)})"


async def _check_postgres(url: str) -> str:
    shown = redact_url(url)
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except (
        asyncpg.InvalidCatalogNameError,
        asyncpg.InvalidAuthorizationSpecificationError,
        asyncpg.InvalidPasswordError,
        asyncpg.ClientConfigurationError,
    ) as exc:
        raise ConfigError(f"store.url: {shown}: {exc}") from exc
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise TransientError(
            f"cannot reach PostgreSQL at {shown}: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        await conn.fetchval("SELECT 1")
    finally:
        await conn.close()
    return f"PostgreSQL {shown}"


def _owner(path: Path) -> str:
    uid = path.stat().st_uid
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"
