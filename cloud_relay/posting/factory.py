"""Choose the posting store from the ``[store] url`` scheme: it lives beside the inbox."""

from __future__ import annotations

from cloud_relay.config import StoreConfig
from cloud_relay.errors import ConfigError
from cloud_relay.inbox.factory import sqlite_path
from cloud_relay.posting.postgres import PostgresPostingStore
from cloud_relay.posting.sqlite import SqlitePostingStore
from cloud_relay.posting.store import PostingStore

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")
#: Connections of the writer's pool unless told otherwise.
_POSTGRES_POOL_SIZE = 4


def open_posting_store(config: StoreConfig, *, pool_size: int | None = None) -> PostingStore:
    """Build the store for ``config.url``; the caller then awaits its ``open()``.

    PostgreSQL gets ``pool_size`` connections, by default 4 or ``[store] pool_size`` if smaller.
    """
    if config.url.startswith(_SQLITE):
        return SqlitePostingStore(sqlite_path(config.url), durability=config.durability)
    if config.url.startswith(_POSTGRES):
        size = pool_size if pool_size is not None else min(config.pool_size, _POSTGRES_POOL_SIZE)
        return PostgresPostingStore(config.url, pool_size=size)
    raise ConfigError("[store] url: must start with sqlite:/// or postgresql://")
