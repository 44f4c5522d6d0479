"""The writer lock (one writer per database) and the route cursors, in SQLite.

The ``WriterLock`` role of :class:`~cloud_relay.posting.sqlite.SqlitePostingStore`.
"""

from __future__ import annotations

import fcntl
import logging
import os

from cloud_relay.errors import ConfigError, TransientError
from cloud_relay.posting.sqlite_base import SqlitePostingBase

logger = logging.getLogger(__name__)


class SqliteWriterLock(SqlitePostingBase):
    """The writer lock and route cursors."""

    async def close(self) -> None:
        """Release the writer lock and close the connection after any call in flight."""
        await self.release_writer_lock()
        await super().close()

    async def acquire_writer_lock(self) -> bool:
        """``flock`` the lock file beside the database without waiting."""
        if self._lock_fd is not None:
            return True
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError as exc:
            raise ConfigError(f"{self._where}: cannot create {self._lock_path}: {exc}") from exc
        except OSError as exc:
            raise TransientError(f"{self._where}: cannot open {self._lock_path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise TransientError(f"{self._where}: cannot lock {self._lock_path}: {exc}") from exc
        self._lock_fd = fd
        return True

    async def release_writer_lock(self) -> None:
        """Unlock and close the lock file (closing alone would release it too)."""
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    async def writer_lock_held(self) -> bool:
        """Whether this instance holds the ``flock`` of the file now at the lock path: one
        deleted or replaced under it could be locked by another writer, so that counts as lost."""
        if self._lock_fd is None:
            return False
        try:
            same = os.stat(self._lock_path).st_ino == os.fstat(self._lock_fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            logger.warning("%s: writer lock file %s was replaced", self._where, self._lock_path)
            await self.release_writer_lock()
        return same

    async def route_cursor(self, gateway_id: str) -> int:
        """Highest seq of the gateway routed into postings (0 when none)."""
        async with self._connection() as db:
            return await self._cursor(db, gateway_id)

    async def route_cursors(self) -> dict[str, int]:
        """The route cursor of every gateway routed so far."""
        rows = await self._fetch("SELECT gateway_id, routed_seq FROM posting_cursor")
        return {row[0]: row[1] for row in rows}
