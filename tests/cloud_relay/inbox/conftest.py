"""Fixtures that run each inbox test against SqliteInbox and PostgresInbox alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cloud_relay.inbox.postgres import PostgresInbox
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import InboxStore
from tests.cloud_relay.inbox.harness import EventMaker, StoreMaker
from tests.fixtures.postgres import postgres_url

__all__ = ["postgres_url"]


@pytest.fixture
def events() -> EventMaker:
    return EventMaker()


@pytest.fixture(params=["sqlite", "postgres"])
def store_builder(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], InboxStore]:
    """Builds unopened stores that all share one backing file or database."""
    if request.param == "sqlite":
        path = tmp_path / "inbox.db"
        return lambda: SqliteInbox(path)
    url: str = request.getfixturevalue("postgres_url")
    return lambda: PostgresInbox(url, pool_size=4)


@pytest.fixture
async def open_store(store_builder: Callable[[], InboxStore]) -> AsyncIterator[StoreMaker]:
    """Opens another store on the shared backing; every one is closed after the test."""
    opened: list[InboxStore] = []

    async def make() -> InboxStore:
        store = store_builder()
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def inbox(open_store: StoreMaker) -> InboxStore:
    return await open_store()
