"""The queue's SQLite file: its tables, its pragmas, and what happens to a file that is damaged.

A damaged file is never truncated or repaired in place: it is renamed aside, with its ``-wal``
and ``-shm``, so a person can inspect it, and a fresh file takes its place.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote

import aiosqlite

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    created_at REAL NOT NULL,
    body BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedupe (
    key TEXT PRIMARY KEY, seq INTEGER NOT NULL, created REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedupe_by_seq ON dedupe (seq);
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    source TEXT NOT NULL,
    location TEXT NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS probe (id INTEGER PRIMARY KEY, filler BLOB NOT NULL);
"""

#: Meta keys and their value for a new file (``gateway_id`` and the seqs are set on creation).
COUNTER_KEYS = ("queued_bytes", "enqueued_total", "duplicates_total", "shed_total", "rejects_total")

#: SQLite primary result codes that mean the file itself is damaged or not a database.
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})

#: Page cache of each connection, in KiB: modest, so a million queued events cost no memory.
WRITER_CACHE_KIB = 8192
READER_CACHE_KIB = 2048
#: The WAL is truncated back to this after a checkpoint, so an outage does not leave it huge.
JOURNAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024
_DEFAULT_CHECKPOINT_PAGES = 1000
_PAGE_BYTES = 4096


class DamagedFileError(Exception):
    """The file is not a healthy SQLite database (internal: the store moves it aside)."""


def is_damage(exc: sqlite3.Error) -> bool:
    """Tell whether a SQLite error says the file is damaged or not a database at all."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in _DAMAGE_CODES
    text = str(exc)
    return "not a database" in text or "malformed" in text


def is_full(exc: sqlite3.Error) -> bool:
    """Tell whether a SQLite error is SQLITE_FULL (disk or page limit reached)."""
    code: int | None = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) == sqlite3.SQLITE_FULL
    return "database or disk is full" in str(exc)


def checkpoint_pages(reserve_bytes: int) -> int:
    """WAL pages between checkpoints: a checkpoint must always fit in the disk reserve."""
    if reserve_bytes == 0:
        return _DEFAULT_CHECKPOINT_PAGES
    return max(16, min(_DEFAULT_CHECKPOINT_PAGES, reserve_bytes // _PAGE_BYTES // 4))


def configure_writer(
    conn: sqlite3.Connection, durability: Literal["power", "process"], reserve_bytes: int
) -> None:
    """WAL mode at the synchronous level ``durability`` asks for, and the writer's pragmas.

    The WAL is checkpointed often enough that the file growth a checkpoint needs stays well
    inside the disk reserve: so a full disk can always be drained by acks.
    """
    conn.execute("PRAGMA busy_timeout = 5000")
    # Takes effect in a new file (before its first table): acks can then give the pages they
    # free back to the file system (PRAGMA incremental_vacuum), so a full disk heals.
    conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
    row = conn.execute("PRAGMA journal_mode = WAL").fetchone()
    if row is None or str(row[0]).lower() != "wal":
        raise DamagedFileError(f"cannot switch to WAL mode (got {row!r})")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durability == 'power' else 'NORMAL'}")
    conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
    conn.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT_BYTES}")
    conn.execute("PRAGMA temp_store = MEMORY")
    # Some builds zero deleted content: that would make every ack rewrite what it deletes,
    # doubling the writes and needing free disk to drain a full one.
    conn.execute("PRAGMA secure_delete = OFF")
    conn.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages(reserve_bytes)}")


async def connect_reader(path: Path) -> aiosqlite.Connection:
    """A connection for reads only: it sees committed transactions and never blocks the writer."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        await conn.execute("PRAGMA busy_timeout = 5000")
        await conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
        await conn.execute("PRAGMA query_only = ON")
    except BaseException:
        await conn.close()
        raise
    return conn


def check_read_only(path: Path) -> None:
    """Run ``PRAGMA quick_check`` on a read-only connection; DamagedFileError on damage.

    Read-only, so that checking a damaged file can never checkpoint its WAL into it or delete
    the WAL on close: what is moved aside is exactly what was found.
    """
    try:
        conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            verdict = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if is_damage(exc):
            raise DamagedFileError(f"{path}: {exc}") from exc
        raise
    if verdict != ["ok"]:
        raise DamagedFileError(f"{path} failed quick_check: {'; '.join(verdict[:5])}")


def create_tables(conn: sqlite3.Connection) -> None:
    """Create the tables a queue file needs, where missing."""
    conn.executescript(_DDL)


def enable_incremental_vacuum(conn: sqlite3.Connection) -> None:
    """Turn incremental auto-vacuum on in a file made without it, while it holds no events.

    That takes a VACUUM (a rewrite of the file); a file holding events is left as it is, and
    so is one the disk has no room to rewrite (it is tried again at the next start).
    """
    (mode,) = conn.execute("PRAGMA auto_vacuum").fetchone()
    if mode == 2 or conn.execute("SELECT 1 FROM events LIMIT 1").fetchone() is not None:
        return
    try:
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.execute("VACUUM")
    except sqlite3.OperationalError as exc:
        log.warning("cannot turn on incremental vacuum in the queue file yet: %s", exc)


def read_meta(conn: sqlite3.Connection) -> dict[str, object]:
    """All meta key/values."""
    return {str(k): v for k, v in conn.execute("SELECT key, value FROM meta")}


def rollback(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if any (SQLite may already have rolled it back)."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.error("queue rollback failed: %s", exc)


def move_aside(path: Path) -> Path:
    """Rename a damaged ``path`` (with ``-wal`` and ``-shm``) to ``<name>.corrupt-<UTC time>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    if path.exists():
        path.rename(target)
    log.critical(
        "queue file %s is damaged and was moved aside to %s; a fresh queue takes its place. "
        "Events in the damaged file were not uploaded; keep it for inspection",
        path,
        target,
    )
    return target
