"""What the queue does when the disk fills up, and how it notices that space has returned.

A write that fails for lack of space is rolled back and pauses the sources. The disk reserve
is released so acks can still be written, and the queue learns a capacity below what it held
when the disk filled: below it, new events fit into pages that acks freed inside the file, so
the file does not grow. Now and then (and after each ack) a check runs: once there is room for
the reserve again, the configured byte limit applies again; once a small test write commits,
sources resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable

from agent.queue import transactions
from agent.queue.config import QueueConfig
from agent.queue.dbthread import SqliteThread
from agent.queue.mirror import Mirror
from agent.queue.reserve import DiskReserve

log = logging.getLogger(__name__)

#: Bytes the test write commits (and frees again) to see whether writes succeed.
PROBE_BYTES = 64 * 1024


class DiskFullRecovery:
    """Pauses the queue on a full disk and resumes it once writes can succeed."""

    def __init__(
        self,
        db: SqliteThread,
        lock: asyncio.Lock,
        config: QueueConfig,
        mirror: Mirror,
        reserve: DiskReserve,
        notify: Callable[[], None],
    ) -> None:
        self._db = db
        self._lock = lock
        self._interval = config.full_probe_interval_seconds
        self._m = mirror
        self._reserve = reserve
        self._notify = notify
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def take_reserve(self) -> None:
        """Hold the reserve at start; without room for it, the queue may not grow for now."""
        if await asyncio.to_thread(self._reserve.take):
            return
        m = self._m
        m.capacity_bytes = m.bytes
        m.last_error = (
            f"no room on disk for the {self._reserve.size}-byte reserve: the queue does not "
            "grow until disk space returns"
        )
        log.error("%s", m.last_error)
        self._start()

    def storage_full(self, exc: Exception) -> None:
        """A write found no disk space: pause, release the reserve, learn the disk's size."""
        m = self._m
        if not m.disk_full:
            log.error("queue storage is full (%s): pausing sources until space returns", exc)
        m.disk_full = True
        m.last_error = f"disk full: {exc}"
        self._reserve.release()
        cap = max(0, m.bytes - max(self._reserve.size, m.bytes // 10))
        m.capacity_bytes = cap if m.capacity_bytes is None else min(cap, m.capacity_bytes)
        self._start()

    def poke(self) -> None:
        """Check now rather than at the next interval (an ack may have made room)."""
        self._poke.set()

    async def stop(self) -> None:
        """Stop checking."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="queue-disk-full")

    async def _run(self) -> None:
        m = self._m
        while (m.disk_full or m.capacity_bytes is not None) and not self._stopping:
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._poke.wait()
            changed = False
            if m.capacity_bytes is not None and await asyncio.to_thread(self._retake_reserve):
                log.warning("disk space has returned: the queue's full byte limit applies again")
                m.capacity_bytes = None
                changed = True
            # While the reserve is out, test-write only once acks have freed pages inside the
            # file: a test write that grew the file would spend the room the acks need.
            room = m.capacity_bytes is None or m.used_bytes() < m.capacity_bytes
            if m.disk_full and room:
                async with self._lock:
                    if await self._probe():
                        log.warning("queue storage takes writes again: sources resume")
                        m.disk_full = False
                        changed = True
            if changed:
                m.last_error = None
                if m.capacity_bytes is not None:
                    m.last_error = (
                        f"the disk filled up: the queue is held to {m.capacity_bytes} bytes "
                        "until disk space returns"
                    )
                self._notify()

    def _retake_reserve(self) -> bool:
        try:
            return self._reserve.has_room() and self._reserve.take()
        except OSError as exc:
            log.warning("cannot check the disk for room: %s", exc)
            return False

    async def _probe(self) -> bool:
        """Commit (then free) a few pages: the space later commits reuse."""
        try:
            await self._db.run(transactions.probe, PROBE_BYTES)
        except sqlite3.Error as exc:
            log.debug("queue storage still full: %s", exc)
            return False
        return True
