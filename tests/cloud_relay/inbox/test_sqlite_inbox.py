"""What only the SQLite inbox does: file locking, cancellation on the shared connection, schema."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cloud_relay.errors import ConfigError, RelayError, SequenceGapError, TransientError
from cloud_relay.inbox.sqlite import SqliteInbox
from cloud_relay.inbox.store import StoreResult
from cloud_relay.storage.timestamps import format_utc as _ts
from tests.cloud_relay.inbox.harness import EventMaker


@contextmanager
def write_lock(path: Path) -> Iterator[sqlite3.Connection]:
    """Another process's writer holding the database's write lock until the block ends."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


async def test_locked_database_past_the_timeout_is_transient(
    tmp_path: Path, events: EventMaker
) -> None:
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(path, busy_timeout_seconds=0.05)
    await inbox.open()
    try:
        with write_lock(path):
            with pytest.raises(TransientError, match="locked"):
                await inbox.store_batch("gw-1", "k", 1, events.run(1, 5))
            with pytest.raises(TransientError):
                await inbox.add_key("gw-1", "key-a", "pem")
        assert inbox.stats().transient_errors == 2
        assert await inbox.acked_seq("gw-1") == 0
        assert await inbox.store_batch("gw-1", "k", 1, events.run(1, 5)) == StoreResult(5, 5)
    finally:
        await inbox.close()


async def test_batches_waiting_for_a_commit_share_the_next_one_and_fail_alone(
    tmp_path: Path, events: EventMaker
) -> None:
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(path, busy_timeout_seconds=30)
    await inbox.open()
    try:
        with write_lock(path):
            calls = [
                asyncio.ensure_future(
                    inbox.store_batch(gw, "k", first, events.run(first, last, gw))
                )
                for gw, first, last in [
                    ("gw-1", 1, 5),
                    ("gw-2", 1, 5),
                    ("gw-3", 3, 5),  # a gap: gw-3 has nothing stored yet
                    ("gw-1", 6, 10),
                ]
            ]
            await asyncio.sleep(0)  # every call is now waiting behind the locked file
        outcomes = await asyncio.gather(*calls, return_exceptions=True)
        assert outcomes[0] == StoreResult(5, 5)
        assert outcomes[1] == StoreResult(5, 5)
        assert isinstance(outcomes[2], SequenceGapError)
        assert outcomes[3] == StoreResult(10, 5)
        assert [await inbox.acked_seq(gw) for gw in ("gw-1", "gw-2", "gw-3")] == [10, 5, 0]
        stamps = {
            (e.gateway_id, e.seq): e.received_at
            for gw in ("gw-1", "gw-2")
            for e in await inbox.events_after(gw, 0, 100)
        }
        # The batches that waited were committed together, in one transaction.
        assert stamps[("gw-2", 1)] == stamps[("gw-1", 6)]
        assert (inbox.stats().batches, inbox.stats().gaps) == (3, 1)
    finally:
        await inbox.close()


async def test_cancelled_write_leaves_no_open_transaction(
    tmp_path: Path, events: EventMaker
) -> None:
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(path, busy_timeout_seconds=30)
    await inbox.open()
    try:
        with write_lock(path):
            task = asyncio.create_task(inbox.store_batch("gw-1", "k", 1, events.run(1, 10)))
            for _ in range(10):  # let it take the connection and wait on the file lock
                await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # The abandoned write finishes on its own; the next call waits for it, then replays.
        result = await inbox.store_batch("gw-1", "k", 1, events.run(1, 10))
        assert result.acked_seq == 10
        with write_lock(path):  # no transaction left open on the inbox's connection
            pass
        assert await inbox.store_batch("gw-1", "k", 11, events.run(11, 12)) == StoreResult(12, 2)
    finally:
        await inbox.close()


async def test_missing_directory_is_a_config_error(tmp_path: Path) -> None:
    inbox = SqliteInbox(tmp_path / "absent" / "inbox.db")
    with pytest.raises(ConfigError, match="absent"):
        await inbox.open()


async def test_schema_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(path)
    await inbox.open()
    await inbox.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RelayError, match="schema version 99"):
        await SqliteInbox(path).open()


async def test_file_is_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    inbox = SqliteInbox(path, durability="process")
    await inbox.open()
    await inbox.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=5, minutes=30))]),
    )
)
def test_stored_times_are_utc_rfc3339_with_microseconds(moment: datetime) -> None:
    assert _ts(moment) == moment.astimezone(UTC).isoformat(timespec="microseconds")
