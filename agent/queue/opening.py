"""Opening a queue: lock it, check it, move a damaged file aside, load what it holds.

Refuses a file that belongs to another gateway (its seqs are that gateway's), and a queue that
another process holds. A fresh file continues after the seq mark, never at a reused seq.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from agent.errors import ConfigError, QueueCorruptError, QueueFullError
from agent.queue import schema
from agent.queue.config import QueueConfig
from agent.queue.dbthread import SqliteThread
from agent.queue.mirror import Mirror
from agent.queue.reserve import DiskReserve
from agent.queue.seqmark import SeqMark, read_mark

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OpenedQueue:
    """The handles and figures a store starts from."""

    writer: SqliteThread
    reader: aiosqlite.Connection
    lock_fd: int
    mirror: Mirror
    moved_aside: tuple[str, ...]


async def open_queue(path: Path, gateway_id: str, config: QueueConfig) -> OpenedQueue:
    """Lock, open (moving a damaged file aside) and load the queue at ``path``."""
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    lock_fd = _lock_file(path)
    writer: SqliteThread | None = None
    reader: aiosqlite.Connection | None = None
    try:
        mark = read_mark(path)
        if mark is not None and mark.gateway_id != gateway_id:
            raise ConfigError(
                f"{path}: the queue's seq mark belongs to gateway {mark.gateway_id!r}, "
                f"not {gateway_id!r}; give this gateway its own [queue] path"
            )
        moved: list[str] = []
        try:
            writer = await _open_with_room(path, config)
        except schema.DamagedFileError as exc:
            log.error("queue file is damaged: %s", exc)
            moved.append(str(await asyncio.to_thread(schema.move_aside, path)))
            try:
                writer = await _open_checked(path, config)
            except schema.DamagedFileError as again:
                raise QueueCorruptError(f"cannot create a fresh queue: {again}") from again
        mirror = await writer.run(_load, path, gateway_id, config, mark)
        reader = await schema.connect_reader(path)
    except BaseException:
        if reader is not None:
            await reader.close()
        if writer is not None:
            await writer.close()
        os.close(lock_fd)
        raise
    return OpenedQueue(writer, reader, lock_fd, mirror, tuple(moved))


async def _open_with_room(path: Path, config: QueueConfig) -> SqliteThread:
    """Open; on a disk too full even for that (recovering the WAL after a kill -9 needs some
    room), release the disk reserve, which exists for exactly such writes, and try again."""
    try:
        return await _open_checked(path, config)
    except _NoSpaceError as exc:
        reserve = DiskReserve(path, config.disk_reserve_bytes)
        if not await asyncio.to_thread(reserve.release):
            raise QueueFullError(f"cannot open queue file {path}: {exc}") from exc
    try:
        return await _open_checked(path, config)
    except _NoSpaceError as exc:
        raise QueueFullError(f"cannot open queue file {path}: {exc}") from exc


class _NoSpaceError(Exception):
    """Opening failed for lack of disk space."""


def _lock_file(path: Path) -> int:
    """Hold ``<queue>.lock`` for the life of the store: two agents must never share a queue."""
    lock_path = path.with_name(path.name + ".lock")
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        os.close(fd)
        raise ConfigError(f"{path} is in use by another edge agent process") from exc
    return fd


async def _open_checked(path: Path, config: QueueConfig) -> SqliteThread:
    """Check integrity, connect and create missing tables; DamagedFileError when damaged."""
    try:
        if await asyncio.to_thread(path.exists):
            await asyncio.to_thread(schema.check_read_only, path)
        db = await SqliteThread.open(path)
    except sqlite3.Error as exc:
        if schema.is_full(exc):
            raise _NoSpaceError(str(exc)) from exc
        raise QueueCorruptError(f"cannot open queue file {path}: {exc}") from exc
    try:
        await db.run(_prepare, config)
    except sqlite3.DatabaseError as exc:
        await db.close()
        if schema.is_full(exc):
            raise _NoSpaceError(str(exc)) from exc
        if schema.is_damage(exc):
            raise schema.DamagedFileError(f"{path}: {exc}") from exc
        raise QueueCorruptError(f"cannot open queue file {path}: {exc}") from exc
    except BaseException:
        await db.close()
        raise
    return db


def _prepare(conn: sqlite3.Connection, config: QueueConfig) -> None:
    schema.configure_writer(conn, config.durability, config.disk_reserve_bytes)
    schema.create_tables(conn)
    schema.enable_incremental_vacuum(conn)


def _load(
    conn: sqlite3.Connection,
    path: Path,
    gateway_id: str,
    config: QueueConfig,
    mark: SeqMark | None,
) -> Mirror:
    """Read meta (initialising a new file) into a :class:`Mirror` (on the writer's thread)."""
    meta = schema.read_meta(conn)
    if "gateway_id" not in meta:
        _initialise(conn, path, gateway_id, mark)
        meta = schema.read_meta(conn)
    owner = str(meta["gateway_id"])
    if owner != gateway_id:
        raise ConfigError(
            f"{path} belongs to gateway {owner!r}, not {gateway_id!r}: a queue holds one "
            "gateway's seqs; give this gateway its own [queue] path"
        )
    version = _int(meta, "schema_version", 1)
    if version > schema.SCHEMA_VERSION:
        raise ConfigError(f"{path} was written by a newer agent (queue schema {version})")
    (max_seq,) = conn.execute("SELECT MAX(seq) FROM events").fetchone()
    m = Mirror(
        next_seq=max(_int(meta, "next_seq", 1), (max_seq or 0) + 1),
        acked_seq=_int(meta, "acked_seq", 0),
        bytes=_int(meta, "queued_bytes", 0),
        enqueued=_int(meta, "enqueued_total", 0),
        duplicates=_int(meta, "duplicates_total", 0),
        shed=_int(meta, "shed_total", 0),
        rejected=_int(meta, "rejects_total", 0),
    )
    # Without a mark the first commit writes one; with one, it is the bound to stay under.
    m.seq_ceiling = mark.seq_ceiling if mark is not None else m.next_seq - 1
    first = conn.execute("SELECT seq, created_at FROM events ORDER BY seq LIMIT 1").fetchone()
    if first is not None:
        m.first_seq, m.first_created = int(first[0]), float(first[1])
        m.avg_body_bytes = max(1.0, m.bytes / max(1, m.pending()))
    (m.dedupe_rows,) = conn.execute("SELECT COUNT(*) FROM dedupe").fetchone()
    if meta.get("max_bytes") != config.max_bytes:
        try:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('max_bytes', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (config.max_bytes,),
            )
        except sqlite3.OperationalError as exc:  # for queue-stats only: a full disk may wait
            if not schema.is_full(exc):
                raise
            log.warning("cannot record max_bytes in the queue file yet: %s", exc)
    return m


def _initialise(
    conn: sqlite3.Connection, path: Path, gateway_id: str, mark: SeqMark | None
) -> None:
    """Write the meta rows of a new file, continuing after the seq mark when there is one."""
    start = 1
    if mark is not None:
        start = mark.seq_ceiling + 1
        log.critical(
            "queue %s is new but its seq mark shows seqs up to %d may have been used (acked "
            "through %d): continuing at seq %d so that no seq is reused; unacknowledged events "
            "in %d..%d are not in this queue and the relay will report the gap",
            path,
            mark.seq_ceiling,
            mark.acked_seq,
            start,
            mark.acked_seq + 1,
            mark.seq_ceiling,
            extra={"gateway_id": gateway_id},
        )
    rows: list[tuple[str, object]] = [
        ("gateway_id", gateway_id),
        ("schema_version", schema.SCHEMA_VERSION),
        ("next_seq", start),
        ("acked_seq", start - 1),
        *((key, 0) for key in schema.COUNTER_KEYS),
    ]
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", rows)
        conn.execute("COMMIT")
    except BaseException:
        schema.rollback(conn)
        raise


def _int(meta: dict[str, object], key: str, default: int) -> int:
    value = meta.get(key, default)
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError as exc:
        raise QueueCorruptError(f"queue meta {key!r} is not a number: {value!r}") from exc
