"""Choose the inbox implementation from the ``[store] url`` scheme."""

from __future__ import annotations

from pathlib import Path

from cloud_relay.config import StoreConfig
from cloud_relay.errors import ConfigError
from cloud_relay.inbox.postgres import PostgresInbox
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import InboxStore

_SQLITE = "sqlite:///"
_POSTGRES = ("postgresql://", "postgres://")


def sqlite_path(url: str) -> Path:
    """The file of a ``sqlite:///absolute/path.db`` URL (``sqlite:////path.db`` also accepted)."""
    rest = url[len(_SQLITE) :].lstrip("/")
    if not rest or rest.endswith("/"):
        raise ConfigError(f"[store] url: {url!r} names no database file")
    return Path("/" + rest)


def open_inbox(config: StoreConfig) -> InboxStore:
    """Build the store for ``config.url``; the caller then awaits its ``open()``."""
    if config.url.startswith(_SQLITE):
        return SqliteInbox(sqlite_path(config.url), durability=config.durability)
    if config.url.startswith(_POSTGRES):
        return PostgresInbox(config.url, pool_size=config.pool_size)
    raise ConfigError("[store] url: must start with sqlite:/// or postgresql://")
