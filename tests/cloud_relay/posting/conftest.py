"""Fixtures that run each posting-store test against SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.store import PostingStore
from tests.fixtures.postgres import postgres_url

__all__ = ["postgres_url"]

PostingStoreMaker = Callable[[], Awaitable[PostingStore]]


@pytest.fixture(params=["sqlite", "postgres"])
def posting_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The ``[store] url`` of a fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/relay.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
async def open_posting(posting_url: str) -> AsyncIterator[PostingStoreMaker]:
    """Opens another store on the shared database (as another process would); every one is
    closed after the test."""
    opened: list[PostingStore] = []

    async def make() -> PostingStore:
        store = open_posting_store(StoreConfig(url=posting_url, pool_size=4))
        await store.open()
        opened.append(store)
        return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def posting_store(open_posting: PostingStoreMaker) -> PostingStore:
    return await open_posting()
