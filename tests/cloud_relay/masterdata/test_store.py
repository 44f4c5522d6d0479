"""The BOM store's rules on SQLite and PostgreSQL alike: immutable ordered revisions, reuse of
shared sub-assemblies, the current-revision log, the audit log and the publishing lease."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.factory import BomStore, open_bom_store
from cloud_relay.masterdata.store import BomRejected, NewRevision

NOW = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[BomStore]:
    opened = open_bom_store(StoreConfig(url=store_url, pool_size=2))
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def add(store: BomStore, *revisions: tuple[str, str, str]) -> s.Submitted:
    news = [NewRevision(p, r, h) for p, r, h in revisions]
    return await store.run(
        lambda tx: s.add_submission(tx, body="{}", by="alice", via="cli", revisions=news, now=NOW)
    )


async def test_revisions_are_immutable_and_ordered(store: BomStore) -> None:
    first = await add(store, ("SUB", "A", "h1"), ("TOP", "1", "h2"))
    assert first.created
    assert await add(store, ("SUB", "A", "h1"), ("TOP", "1", "h2")) == s.Submitted(first.id, False)
    shared = await add(store, ("SUB", "A", "h1"), ("TOP", "2", "h3"))
    assert shared.created and shared.id != first.id
    with pytest.raises(BomRejected, match="with other content"):
        await add(store, ("SUB", "A", "hX"), ("TOP", "3", "h4"))
    with pytest.raises(BomRejected, match="out of sequence, revision 2"):
        await add(store, ("TOP", "1a", "h5"))
    assert [r.revision for r in await store.run(lambda tx: s.revisions_of(tx, "TOP"))] == ["1", "2"]
    # Nothing of a refused submission was kept.
    assert len(await store.run(lambda tx: s.list_submissions(tx, 10))) == 2


async def test_due_and_counts(store: BomStore) -> None:
    a = await add(store, ("P", "A", "h"))
    b = await add(store, ("Q", "A", "h"))
    later = NOW + timedelta(hours=1)
    await store.run(lambda tx: s.set_state(tx, a.id, "approved", NOW))
    await store.run(lambda tx: s.set_state(tx, b.id, "approved", NOW, publish_after=later))
    due = await store.run(lambda tx: s.due_submissions(tx, NOW))
    assert [d.id for d in due] == [a.id]
    due = await store.run(lambda tx: s.due_submissions(tx, later))
    assert [d.id for d in due] == [a.id, b.id]
    counts = await store.run(s.counts)
    assert counts.approved == 2 and counts.pending == 0


async def test_current_log(store: BomStore) -> None:
    await store.run(lambda tx: s.set_current(tx, "P", "A", NOW, "bob", None))
    await store.run(lambda tx: s.set_current(tx, "P", "A", NOW, "bob", None))
    await store.run(lambda tx: s.set_current(tx, "P", "B", NOW + timedelta(1), "bob", "new"))
    log = await store.run(lambda tx: s.current_log(tx, "P"))
    assert [(e.revision, e.since) for e in log] == [("A", NOW), ("B", NOW + timedelta(1))]


async def test_lease_is_held_by_one_holder_until_it_runs_out(store: BomStore) -> None:
    assert await store.run(lambda tx: s.take_lease(tx, "bom", "r1", NOW, 60))
    assert not await store.run(lambda tx: s.take_lease(tx, "bom", "r2", NOW, 60))
    assert await store.run(
        lambda tx: s.take_lease(tx, "bom", "r1", NOW + timedelta(seconds=30), 60)
    )
    assert not await store.run(
        lambda tx: s.take_lease(tx, "bom", "r2", NOW + timedelta(seconds=60), 60)
    )
    assert await store.run(
        lambda tx: s.take_lease(tx, "bom", "r2", NOW + timedelta(seconds=91), 60)
    )
    await store.run(lambda tx: s.drop_lease(tx, "bom", "r2"))
    assert await store.run(lambda tx: s.take_lease(tx, "bom", "r1", NOW, 60))
