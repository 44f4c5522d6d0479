"""The byte limit, both overflow policies, and a disk that really fills up."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.errors import QueueFullError
from agent.queue.model import NewEvent

OpenStore = Callable[..., Awaitable[Any]]
MakeEvent = Callable[..., NewEvent]
LIMIT = 64 * 1024  # the smallest max_bytes the config allows


def _sql(conn: sqlite3.Connection, sql: str) -> list[Any]:
    """Run on the queue's writer thread: how a test reaches past the store to the file."""
    return conn.execute(sql).fetchall()


async def _fill(store: Any, make_event: MakeEvent, *, pad: int = 300) -> int:
    """Enqueue stock-moving events until the queue refuses one; return the last seq queued."""
    last = 0
    for i in range(10_000):
        try:
            (res,) = await store.enqueue([make_event(i, pad=pad)])
        except QueueFullError:
            return last
        last = res.seq
    raise AssertionError("the queue never became full")


async def test_reject_policy_pauses_then_recovers_after_ack(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(max_bytes=LIMIT)
    last = await _fill(store, make_event)
    stats = store.stats()
    assert store.is_full and stats.full
    assert stats.bytes >= LIMIT and stats.bytes < LIMIT + 1024  # overshoot: at most one call
    with pytest.raises(QueueFullError, match="queue is full"):
        await store.enqueue([make_event(kind="telemetry"), make_event()])
    assert store.stats().last_seq == last  # nothing of the refused calls was written

    writable = asyncio.create_task(store.wait_until_writable())
    await asyncio.sleep(0)
    assert not writable.done()
    await store.ack_through(last // 2)
    await asyncio.wait_for(writable, 5)
    assert not store.is_full
    (res,) = await store.enqueue([make_event()])
    assert res.seq == last + 1  # still gapless after the refusals


async def test_reject_policy_survives_restart_full(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(max_bytes=LIMIT)
    await _fill(store, make_event)
    await store.close()
    store = await open_store(max_bytes=LIMIT)
    assert store.is_full  # queued bytes are known at open, not recounted from zero
    with pytest.raises(QueueFullError):
        await store.enqueue([make_event()])


async def test_shed_policy_drops_telemetry_never_stock(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    store = await open_store(
        max_bytes=LIMIT, on_full="shed_telemetry", shed_telemetry_at_fraction=0.5
    )
    shed_seen = False
    for i in range(10_000):
        tele, stock = await store.enqueue([make_event(i, kind="telemetry", pad=300), make_event(i)])
        assert stock.seq is not None and not stock.shed
        if tele.shed:
            shed_seen = True
            assert tele.seq is None
            assert store.stats().bytes >= LIMIT * 0.5
            break
        assert store.stats().bytes < LIMIT * 0.5 + 1024
    assert shed_seen
    # Above the fraction, below the limit: stock still goes in, telemetry is shed.
    while not store.is_full:
        tele, stock = await store.enqueue([make_event(kind="telemetry"), make_event(pad=300)])
        assert tele.shed and stock.seq is not None
    # Full: telemetry alone is shed without an error, any stock-moving event is refused.
    assert [r.shed for r in await store.enqueue([make_event(kind="telemetry")])] == [True]
    last = store.stats().last_seq
    with pytest.raises(QueueFullError):
        await store.enqueue([make_event(kind="telemetry"), make_event()])
    assert store.stats().last_seq == last
    assert store.stats().shed >= 2
    types = set()
    batch = await store.read_batch(0, 100_000, 10**9)
    for ev in batch:
        types.add(ev.type)
    assert "production.reported" in types
    assert [e.seq for e in batch] == list(range(1, last + 1))


async def test_page_limit_full_rolls_back_and_recovers(
    open_store: OpenStore, make_event: MakeEvent
) -> None:
    """SQLITE_FULL from the page limit stands in for a full disk on any machine."""
    store = await open_store(full_probe_interval_seconds=0.05)
    await store.enqueue([make_event(i) for i in range(10)])
    db = store._opened.writer  # type: ignore[attr-defined]
    ((pages,),) = await db.run(_sql, "PRAGMA page_count")
    await db.run(_sql, f"PRAGMA max_page_count = {pages + 2}")
    with pytest.raises(QueueFullError, match="storage is full"):
        for _ in range(200):
            await store.enqueue([make_event(i, pad=200) for i in range(20)], {"cursor": "lost"})
    stats = store.stats()
    assert stats.full and stats.last_error and "full" in stats.last_error
    last = stats.last_seq
    with pytest.raises(QueueFullError):
        await store.enqueue([make_event()])
    writable = asyncio.create_task(store.wait_until_writable())
    await asyncio.sleep(0.2)
    assert not writable.done()  # the probe keeps failing while the limit holds
    await db.run(_sql, "PRAGMA max_page_count = 1000000")
    await asyncio.wait_for(writable, 5)
    assert store.stats().last_error is None
    (res,) = await store.enqueue([make_event()])
    assert res.seq == last + 1
    assert await store.get_state("cursor") != "lost" or last > 10
    await store.close()
    with sqlite3.connect(store._path) as check:  # type: ignore[attr-defined]
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        seqs = [r[0] for r in check.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == list(range(1, last + 2))


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs; skipped where mounting is not permitted (needs root)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


async def test_real_disk_full_never_corrupts_and_recovers(
    open_store: OpenStore, make_event: MakeEvent, tiny_disk: Path
) -> None:
    path = tiny_disk / "queue.db"
    store = await open_store(path, full_probe_interval_seconds=0.05, disk_reserve_bytes=256 * 1024)
    acked: list[int] = []
    with pytest.raises(QueueFullError, match="storage is full"):
        for i in range(100_000):
            res = await store.enqueue([make_event(i, pad=400) for _ in range(10)], {"n": str(i)})
            acked += [r.seq for r in res]
    stats = store.stats()
    assert stats.full and "full" in (stats.last_error or "")
    assert stats.last_seq == acked[-1] == len(acked)
    writable = asyncio.create_task(store.wait_until_writable())
    await asyncio.sleep(0.2)
    assert not writable.done()
    # The queue filled the disk itself: acks (written into the released reserve) free pages
    # inside the file, and the queue goes on within them without outside help.
    await store.ack_through(acked[-1] // 2)
    await asyncio.wait_for(writable, 10)
    more: list[int] = []
    with pytest.raises(QueueFullError):
        for i in range(100_000):
            more += [r.seq for r in await store.enqueue([make_event(i, pad=400)] * 10)]
    assert more and more[0] == acked[-1] + 1
    await store.ack_through(more[-1])  # everything, in one go, still on a full disk
    await asyncio.wait_for(store.wait_until_writable(), 10)
    (res,) = await store.enqueue([make_event()])
    assert res.seq == more[-1] + 1
    await store.close()

    reopened = await open_store(path, disk_reserve_bytes=256 * 1024)
    assert not reopened.stats().moved_aside
    assert (await reopened.enqueue([make_event()]))[0].seq == res.seq + 1
    await reopened.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)


async def test_disk_full_recovers_when_space_returns(
    open_store: OpenStore, make_event: MakeEvent, tiny_disk: Path
) -> None:
    path = tiny_disk / "queue.db"
    store = await open_store(path, full_probe_interval_seconds=0.05, disk_reserve_bytes=256 * 1024)
    await store.enqueue([make_event()])
    ballast = tiny_disk / "ballast"
    with contextlib.suppress(OSError), ballast.open("wb") as fh:
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()
            os.fsync(fh.fileno())
    acked = [1]
    with pytest.raises(QueueFullError):
        for i in range(100_000):
            res = await store.enqueue([make_event(i, pad=400) for _ in range(10)])
            acked += [r.seq for r in res]
    assert store.is_full
    ballast.unlink()  # space returns from outside: the periodic probe notices
    await asyncio.wait_for(store.wait_until_writable(), 10)
    (res,) = await store.enqueue([make_event()])
    assert res.seq == acked[-1] + 1
    assert [e.seq for e in await store.read_batch(0, 10**6, 10**9)] == list(range(1, res.seq + 1))


async def test_no_room_for_the_reserve_at_start_means_no_growth(
    open_store: OpenStore, make_event: MakeEvent, tiny_disk: Path
) -> None:
    store = await open_store(
        tiny_disk / "queue.db", disk_reserve_bytes=4 * 1024 * 1024, full_probe_interval_seconds=0.05
    )
    assert store.is_full
    assert "no room on disk" in (store.stats().last_error or "")
    with pytest.raises(QueueFullError, match="takes no events until disk space returns"):
        await store.enqueue([make_event()])
    assert not _reserve_files(tiny_disk)  # nothing half-allocated is left behind


def _reserve_files(directory: Path) -> list[Path]:
    return list(directory.glob("*.reserve"))
