"""The BOM store in the relay's PostgreSQL database, shared by every replica."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import asyncpg

from cloud_relay.masterdata.schema import schema
from cloud_relay.masterdata.store import Tx
from cloud_relay.storage.postgres import PostgresStore
from cloud_relay.storage.schema import Schema

T = TypeVar("T")

_SCHEMA = Schema("bom", schema("BIGSERIAL PRIMARY KEY"))
_MIGRATION_LOCK = 0x626F6D  # "bom"
_PLACEHOLDER = re.compile(r"\?")


def _numbered(sql: str) -> str:
    """``?`` placeholders as asyncpg's ``$1``, ``$2``..."""
    counter = iter(range(1, 1000))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


class _PostgresTx:
    def __init__(self, conn: asyncpg.Connection | asyncpg.pool.PoolConnectionProxy) -> None:
        self._conn = conn

    async def fetch(self, sql: str, *params: Any) -> list[Sequence[Any]]:
        return [tuple(r) for r in await self._conn.fetch(_numbered(sql), *params)]

    async def execute(self, sql: str, *params: Any) -> None:
        await self._conn.execute(_numbered(sql), *params)


class PostgresBomStore(PostgresStore):
    """:mod:`cloud_relay.masterdata.store` in PostgreSQL; each ``run`` is one transaction."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 2,
        connect_timeout_seconds: float = 10.0,
        command_timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(
            url,
            _SCHEMA,
            label="BOM store",
            migration_lock=_MIGRATION_LOCK,
            pool_size=pool_size,
            connect_timeout_seconds=connect_timeout_seconds,
            command_timeout_seconds=command_timeout_seconds,
        )

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """``work`` in one transaction (committed, or rolled back on an error)."""
        with self._errors():
            async with self._conn().acquire() as conn, conn.transaction():
                return await work(_PostgresTx(conn))
