"""The BOM store in the relay's SQLite file (tables of its own, versioned in ``bom_schema``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite

from cloud_relay.masterdata.schema import schema
from cloud_relay.masterdata.store import Tx
from cloud_relay.storage.schema import Schema
from cloud_relay.storage.sqlite import SqliteStore, fetch_rows

T = TypeVar("T")

_SCHEMA = Schema("bom", schema("INTEGER PRIMARY KEY AUTOINCREMENT"))


class _SqliteTx:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def fetch(self, sql: str, *params: Any) -> list[Sequence[Any]]:
        return await fetch_rows(self._db, sql, params)

    async def execute(self, sql: str, *params: Any) -> None:
        await self._db.execute(sql, params)


class SqliteBomStore(SqliteStore):
    """:mod:`cloud_relay.masterdata.store` on one SQLite file, one transaction at a time."""

    def __init__(
        self,
        path: Path,
        *,
        durability: Literal["power", "process"] = "power",
        busy_timeout_seconds: float = 5.0,
    ) -> None:
        super().__init__(
            path,
            _SCHEMA,
            label="BOM store",
            durability=durability,
            busy_timeout_seconds=busy_timeout_seconds,
            user_version=False,
        )

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """``work`` in one IMMEDIATE transaction (committed, or rolled back on an error)."""

        async def body(db: aiosqlite.Connection) -> T:
            return await work(_SqliteTx(db))

        return await self._write(body)
