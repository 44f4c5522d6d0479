"""Open the BOM store beside the inbox, by the ``[store] url`` scheme."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from cloud_relay.config import StoreConfig
from cloud_relay.errors import ConfigError
from cloud_relay.inbox.factory import sqlite_path
from cloud_relay.masterdata.postgres import PostgresBomStore
from cloud_relay.masterdata.sqlite import SqliteBomStore
from cloud_relay.masterdata.store import Tx

T = TypeVar("T")


class BomStore(Protocol):
    """Where BOM submissions live; ``run`` is one transaction over the store's rules."""

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T: ...


def open_bom_store(config: StoreConfig) -> BomStore:
    """Build the store for ``config.url``; the caller then awaits its ``open()``."""
    if config.url.startswith("sqlite:///"):
        return SqliteBomStore(sqlite_path(config.url), durability=config.durability)
    if config.url.startswith(("postgresql://", "postgres://")):
        return PostgresBomStore(config.url, pool_size=min(config.pool_size, 2))
    raise ConfigError("[store] url: must start with sqlite:/// or postgresql://")


@contextlib.asynccontextmanager
async def opened_bom_store(config: StoreConfig) -> AsyncIterator[BomStore]:
    """The BOM store, open for the block."""
    store = open_bom_store(config)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
