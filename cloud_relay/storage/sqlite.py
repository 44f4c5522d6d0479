"""A store in one SQLite file: WAL, one connection used by one call at a time, and every write
one ``BEGIN IMMEDIATE`` transaction.

The inbox and the posting store subclass :class:`SqliteStore` and add their queries; it opens
the file, brings the schema up to date and turns sqlite3 errors into the relay's errors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite

from cloud_relay.errors import ConfigError, RelayError, TransientError
from cloud_relay.storage.schema import Schema

logger = logging.getLogger(__name__)

T = TypeVar("T")

# SQLite primary result codes that describe a condition which may pass: busy or locked past the
# timeout, out of memory, I/O error, disk full, cannot open a file (WAL, journal), lock protocol.
_TRANSIENT_CODES = frozenset({5, 6, 7, 10, 13, 14, 15})
_SQLITE_CANTOPEN = 14
_SQLITE_READONLY = 8


async def fetch_rows(db: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row of one statement."""
    return list(await db.execute_fetchall(sql, params))


class SqliteStore:
    """The connection, schema and transactions of a store kept in one SQLite file.

    ``label`` names the store in errors and logs (``"inbox database"``, then the path). The
    file's owner keeps its schema version in ``PRAGMA user_version``; a store sharing another's
    file passes ``user_version=False`` and keeps it in a table of its own. ``named_rows`` makes
    rows :class:`sqlite3.Row`; plain tuples are cheaper where a hot path reads by position.
    """

    def __init__(
        self,
        path: Path,
        schema: Schema,
        *,
        label: str,
        durability: Literal["power", "process"],
        busy_timeout_seconds: float,
        user_version: bool,
        named_rows: bool = False,
    ) -> None:
        self._path = path
        self._where = f"{label} {path}"
        self._schema = schema
        self._user_version = user_version
        self._named_rows = named_rows
        self._synchronous = "FULL" if durability == "power" else "NORMAL"
        self._busy_timeout_ms = int(busy_timeout_seconds * 1000)
        self._db: aiosqlite.Connection | None = None
        # One connection: every use is serialised so no call runs inside another's transaction.
        self._lock = asyncio.Lock()
        self._transient_errors = 0

    async def open(self) -> None:
        """Open the file (creating it), switch to WAL and bring the schema up to date."""
        if self._db is not None:
            return
        if not self._path.parent.is_dir():
            raise ConfigError(f"{self._where}: no directory {self._path.parent}")
        try:
            db = await aiosqlite.connect(self._path, isolation_level=None)
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            with self._errors():
                if self._named_rows:
                    db.row_factory = sqlite3.Row
                await db.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
                rows = await fetch_rows(db, "PRAGMA journal_mode = WAL")
                if rows[0][0].lower() != "wal":
                    raise ConfigError(f"{self._where}: WAL mode is not available")
                await db.execute(f"PRAGMA synchronous = {self._synchronous}")
                await db.execute("PRAGMA foreign_keys = ON")
                await self._migrate(db)
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def _migrate(self, db: aiosqlite.Connection) -> None:
        schema = self._schema
        table = schema.version_table
        await db.execute("BEGIN IMMEDIATE")
        try:
            if self._user_version:
                rows = await fetch_rows(db, "PRAGMA user_version")
            else:
                await db.execute(f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER NOT NULL)")
                rows = await fetch_rows(db, f"SELECT coalesce(max(version), 0) FROM {table}")
            for version, statements in schema.steps(rows[0][0], self._where):
                for statement in statements:
                    await db.execute(statement)
                if not self._user_version:
                    await db.execute(f"INSERT INTO {table} (version) VALUES (?)", (version,))
                logger.info("%s schema migrated to version %d", schema.name, version)
            if self._user_version:
                await db.execute(f"PRAGMA user_version = {len(schema.migrations)}")
            await db.execute("COMMIT")
        except BaseException:
            await self._rollback(db)
            raise

    async def close(self) -> None:
        """Close the connection after any call in flight (a no-op when not open)."""
        async with self._lock:
            db, self._db = self._db, None
            if db is not None:
                await db.close()

    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError(f"{type(self).__name__} is not open")
        return self._db

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[aiosqlite.Connection]:
        """The connection to this call alone, for statements outside a transaction of ours."""
        async with self._lock:
            with self._errors():
                yield self._conn()

    async def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Rows of one read statement (one statement, one snapshot)."""
        async with self._connection() as db:
            return await fetch_rows(db, sql, params)

    async def _write(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        """Run ``work`` in one IMMEDIATE transaction that ends in COMMIT or ROLLBACK even when
        the caller is cancelled, so no half-open transaction is left on the shared connection.
        IMMEDIATE takes the write lock up front, so a read inside never fails to upgrade."""
        task = asyncio.ensure_future(self._transaction(work))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._note_orphan)
            raise

    async def _transaction(self, work: Callable[[aiosqlite.Connection], Awaitable[T]]) -> T:
        async with self._lock:
            with self._errors():
                db = self._conn()
                await db.execute("BEGIN IMMEDIATE")
                try:
                    result = await work(db)
                    await db.execute("COMMIT")
                except BaseException:
                    await self._rollback(db)
                    raise
                return result

    async def _rollback(self, db: aiosqlite.Connection) -> None:
        if not db.in_transaction:
            return
        try:
            await db.rollback()
        except sqlite3.Error:
            logger.warning("%s: rollback failed", self._where, exc_info=True)

    def _note_orphan(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.warning(
                "%s: write abandoned by its caller failed: %s", self._where, task.exception()
            )

    def _translate(self, exc: sqlite3.Error) -> RelayError:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        if self._db is None and code == _SQLITE_CANTOPEN:
            return ConfigError(f"{self._where}: cannot open ({exc}): does its directory exist?")
        if code == _SQLITE_READONLY:
            return RelayError(f"{self._where}: {exc}: {_not_writable(self._path)}")
        if code in _TRANSIENT_CODES:
            self._transient_errors += 1
            return TransientError(f"{self._where}: {exc}")
        return RelayError(f"{self._where}: {exc}")

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc


def _not_writable(path: Path) -> str:
    """Which of the store's files this process may not write, and who owns them."""
    me = os.geteuid()
    blocked = []
    for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"), path.parent):
        if candidate.exists() and not os.access(candidate, os.W_OK):
            blocked.append(f"{candidate} (owned by uid {candidate.stat().st_uid})")
    if not blocked:
        return f"the file system holding {path} is read-only to this process"
    return (
        f"this process (uid {me}) cannot write {', '.join(blocked)}: give the relay's user "
        "those files (chown), e.g. if they were created by running a command as root"
    )
