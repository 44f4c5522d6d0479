"""open_inbox picks the store from the URL scheme."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.errors import ConfigError
from cloud_relay.inbox.factory import open_inbox, sqlite_path
from cloud_relay.inbox.postgres import PostgresInbox
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import StoreResult
from tests.cloud_relay.inbox.harness import EventMaker
from tests.fixtures.postgres import postgres_url

__all__ = ["postgres_url"]


def test_sqlite_path() -> None:
    assert sqlite_path("sqlite:///var/lib/cloud-relay/inbox.db") == Path(
        "/var/lib/cloud-relay/inbox.db"
    )
    assert sqlite_path("sqlite:////srv/inbox.db") == Path("/srv/inbox.db")
    for bad in ("sqlite:///", "sqlite:///var/lib/"):
        with pytest.raises(ConfigError, match=r"\[store\] url"):
            sqlite_path(bad)


async def test_sqlite_url_opens_a_sqlite_inbox(tmp_path: Path, events: EventMaker) -> None:
    inbox = open_inbox(StoreConfig(url=f"sqlite://{tmp_path}/inbox.db", durability="process"))
    assert isinstance(inbox, SqliteInbox)
    await inbox.open()
    try:
        assert await inbox.store_batch("gw-1", "k", 1, events.run(1, 3)) == StoreResult(3, 3)
    finally:
        await inbox.close()
    assert (tmp_path / "inbox.db").exists()


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
async def test_postgres_url_opens_a_postgres_inbox(
    postgres_url: str, scheme: str, events: EventMaker
) -> None:
    url = scheme + postgres_url[postgres_url.index("://") :]
    inbox = open_inbox(StoreConfig(url=url, pool_size=2))
    assert isinstance(inbox, PostgresInbox)
    await inbox.open()
    try:
        await inbox.ping()
        assert await inbox.store_batch("gw-1", "k", 1, events.run(1, 3)) == StoreResult(3, 3)
    finally:
        await inbox.close()
