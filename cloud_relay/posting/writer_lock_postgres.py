"""The writer lock (one writer per database) and the route cursors, in PostgreSQL.

The ``WriterLock`` role of :class:`~cloud_relay.posting.postgres.PostgresPostingStore`.
"""

from __future__ import annotations

import logging

import asyncpg

from cloud_relay.posting.postgres_base import (
    _CONNECTION_LOST,
    _WRITER_LOCK,
    PostgresPostingBase,
)

logger = logging.getLogger(__name__)


class PostgresWriterLock(PostgresPostingBase):
    """The writer lock and route cursors."""

    async def close(self) -> None:
        """Release the writer lock and close the pool."""
        await self.release_writer_lock()
        await super().close()

    async def acquire_writer_lock(self) -> bool:
        """Try the writer advisory lock on a connection of its own, without waiting."""
        async with self._lock_guard:
            if await self._lock_alive():
                return True
            with self._errors():
                conn = await asyncpg.connect(
                    self._url,
                    timeout=self._connect_timeout,
                    command_timeout=self._command_timeout,
                )
            try:
                with self._errors():
                    taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", _WRITER_LOCK)
            except BaseException:
                conn.terminate()
                raise
            if not taken:
                await self._hang_up(conn)
                return False
            self._lock_conn = conn
            return True

    async def release_writer_lock(self) -> None:
        """Close the lock connection, which ends its session and so the advisory lock."""
        async with self._lock_guard:
            conn, self._lock_conn = self._lock_conn, None
            if conn is not None:
                await self._hang_up(conn)

    async def writer_lock_held(self) -> bool:
        """Whether the lock connection still answers; a broken one is dropped (lock lost)."""
        async with self._lock_guard:
            return await self._lock_alive()

    async def _lock_alive(self) -> bool:
        conn = self._lock_conn
        if conn is None:
            return False
        try:
            await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
        except _CONNECTION_LOST as exc:
            logger.warning("%s: writer lock connection lost: %s", self._where, exc)
            self._lock_conn = None
            conn.terminate()
            return False
        return True

    async def _hang_up(self, conn: asyncpg.Connection) -> None:
        try:
            await conn.close(timeout=self._connect_timeout)
        except _CONNECTION_LOST:
            conn.terminate()

    async def route_cursor(self, gateway_id: str) -> int:
        """Highest seq of the gateway routed into postings (0 when none)."""
        with self._errors():
            value = await self._conn().fetchval(
                "SELECT routed_seq FROM posting_cursor WHERE gateway_id = $1", gateway_id
            )
        return int(value) if value is not None else 0

    async def route_cursors(self) -> dict[str, int]:
        """The route cursor of every gateway routed so far."""
        with self._errors():
            rows = await self._conn().fetch("SELECT gateway_id, routed_seq FROM posting_cursor")
        return {row["gateway_id"]: row["routed_seq"] for row in rows}
