"""Damaged, missing and foreign queue files, the seq mark, and reading stats from outside."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from agent.errors import AgentError, ConfigError, QueueCorruptError
from agent.queue.model import NewEvent
from agent.queue.seqmark import SEQ_BLOCK, mark_path, read_mark
from agent.queue.stats_reader import read_queue_stats

OpenStore = Callable[..., Awaitable[Any]]
MakeEvent = Callable[..., NewEvent]


def _aside(path: Path) -> list[Path]:
    return sorted(p for p in path.parent.iterdir() if ".corrupt-" in p.name)


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _remove(path: Path) -> None:
    path.unlink()


def _scribble_over_an_events_page(path: Path) -> None:
    """Overwrite one leaf page of the events table, as a bad sector or a stray write would."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        (page,) = conn.execute(
            "SELECT pageno FROM dbstat WHERE name = 'events' AND pagetype = 'leaf' "
            "ORDER BY pageno LIMIT 1 OFFSET 10"
        ).fetchone()
    with path.open("r+b") as fh:
        fh.seek(page_size * (page - 1))
        fh.write(b"\x07" * page_size)


async def _queue_with_events(open_store: OpenStore, make_event: MakeEvent, n: int) -> Any:
    store = await open_store()
    await store.enqueue([make_event(i, pad=100) for i in range(n)])
    await store.ack_through(n // 2)
    return store


async def test_not_a_database_is_moved_aside(
    open_store: OpenStore, make_event: MakeEvent, queue_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await _queue_with_events(open_store, make_event, 10)
    await store.close()
    _write(queue_path, b"this is no SQLite file" * 500)
    _write(queue_path.parent / "queue.db-wal", b"junk wal")
    with caplog.at_level(logging.ERROR):
        store = await open_store()
    moved = _aside(queue_path)
    assert [p.name.endswith("-wal") for p in moved].count(True) == 1
    (main,) = [p for p in moved if not p.name.endswith(("-wal", "-shm"))]
    assert main.read_bytes().startswith(b"this is no SQLite file")  # kept as it was
    assert store.stats().moved_aside == (str(main),)
    assert any(r.levelno == logging.CRITICAL and "moved aside" in r.message for r in caplog.records)
    # The seq mark outlived the file: the fresh queue never reuses a seq the relay may hold.
    (res,) = await store.enqueue([make_event()])
    assert res.seq == 10 + SEQ_BLOCK + 1
    assert store.stats().acked_seq == 10 + SEQ_BLOCK
    await store.close()
    store = await open_store()
    assert store.stats().moved_aside == ()  # only this open moved something aside
    assert (await store.enqueue([make_event()]))[0].seq == res.seq + 1


async def test_failed_quick_check_is_moved_aside(
    open_store: OpenStore, make_event: MakeEvent, queue_path: Path
) -> None:
    store = await _queue_with_events(open_store, make_event, 2000)
    await store.close()
    _scribble_over_an_events_page(queue_path)
    store = await open_store()
    assert len(store.stats().moved_aside) == 1
    assert store.stats().pending == 0
    (res,) = await store.enqueue([make_event()])
    assert res.seq > 2000


async def test_missing_file_continues_after_the_seq_mark(
    open_store: OpenStore, make_event: MakeEvent, queue_path: Path
) -> None:
    store = await _queue_with_events(open_store, make_event, 5)
    await store.close()
    mark = read_mark(queue_path)
    assert mark is not None and mark.acked_seq == 2 and mark.seq_ceiling >= 5
    _remove(queue_path)
    store = await open_store()
    (res,) = await store.enqueue([make_event()])
    assert res.seq == mark.seq_ceiling + 1


async def test_unreadable_mark_is_not_replaced_silently(
    open_store: OpenStore, make_event: MakeEvent, queue_path: Path
) -> None:
    store = await _queue_with_events(open_store, make_event, 5)
    await store.close()
    _write(mark_path(queue_path), b"{broken")
    with pytest.raises(QueueCorruptError, match="seq mark"):
        await open_store()


async def test_mark_of_another_gateway_is_refused(
    open_store: OpenStore, make_event: MakeEvent, queue_path: Path
) -> None:
    store = await _queue_with_events(open_store, make_event, 5)
    await store.close()
    _remove(queue_path)
    with pytest.raises(ConfigError, match="gw-else"):
        await open_store(gateway_id="gw-else")


async def test_stats_reader_on_a_live_queue(
    open_store: OpenStore, make_event: MakeEvent, queue_path: Path
) -> None:
    store = await open_store(max_bytes=10**7)
    await store.enqueue([make_event(i, dedupe_key=f"k{i % 7}") for i in range(20)])
    await store.ack_through(3)
    await store.record_reject("mqtt", "plant/x /qty", "not a number", b"{}")
    live = store.stats()
    seen = read_queue_stats(queue_path)  # while the store is open and holds its lock
    for field in (
        "pending",
        "first_seq",
        "last_seq",
        "acked_seq",
        "bytes",
        "max_bytes",
        "rejected",
        "duplicates",
        "enqueued_total",
        "full",
    ):
        assert getattr(seen, field) == getattr(live, field), field
    assert seen.oldest_age_seconds is not None and seen.oldest_age_seconds >= 0
    await store.enqueue([make_event()])
    assert read_queue_stats(queue_path).last_seq == live.last_seq + 1  # type: ignore[operator]
    await store.close()
    after = read_queue_stats(queue_path)
    assert after.pending == live.pending + 1
    with sqlite3.connect(queue_path) as conn:  # the reader never wrote a thing
        assert conn.execute("SELECT value FROM meta WHERE key='acked_seq'").fetchone() == (3,)


def test_stats_reader_errors(tmp_path: Path) -> None:
    with pytest.raises(AgentError, match="no queue file"):
        read_queue_stats(tmp_path / "absent.db")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite" * 200)
    with pytest.raises(QueueCorruptError):
        read_queue_stats(junk)
    assert junk.read_bytes() == b"not sqlite" * 200
