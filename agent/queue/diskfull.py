"""What the queue does when the disk fills up, and how it heals as the backlog drains.

A write that fails for lack of space is rolled back and pauses the sources; the disk reserve is
kept for the acks. An ack that finds no space is given the reserve (released for exactly that)
and tried again. While the disk is tight, every ack is followed by giving space back to the
file system: a TRUNCATE checkpoint empties the WAL, an incremental vacuum returns the pages the
ack freed. So the file system regains what the relay has acknowledged, and ingest resumes only
once the reserve is held again and a resume mark of free space is reached (hysteresis: the
queue does not flap between full and not full), and a small test write commits.

While sources are paused, ``<queue>.full`` exists, so ``edge-agent queue-stats`` can tell
without the running process (an empty file: creating it needs no free block).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from agent.queue import schema, transactions
from agent.queue.config import QueueConfig
from agent.queue.dbthread import SqliteThread
from agent.queue.mirror import Mirror
from agent.queue.reserve import DiskReserve

log = logging.getLogger(__name__)

#: Bytes the test write commits (and frees again) to see whether writes succeed.
PROBE_BYTES = 64 * 1024
#: Dedupe keys kept (the newest) when the disk stays full after acks gave back what they could.
DEDUPE_KEYS_KEPT_WHEN_FULL = 1000
#: Free pages one reclaim step returns to the file system, at least (a quarter of the reserve).
_VACUUM_MIN_PAGES = 64
_PAGE_BYTES = 4096
#: Free space (beside the reserve) wanted before ingest resumes, at least...
_RESUME_MIN_BYTES = 1024 * 1024
#: ...and never more than this share of the file system, so that a small disk can resume.
_RESUME_MAX_SHARE = 0.25


def full_marker_path(queue_path: Path) -> Path:
    """The file that exists while sources are paused on a full disk."""
    return queue_path.with_name(queue_path.name + ".full")


class DiskFullRecovery:
    """Pauses the queue on a full disk, gives space back as acks drain it, resumes it."""

    def __init__(
        self,
        db: SqliteThread,
        lock: asyncio.Lock,
        queue_path: Path,
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
        self._marker = full_marker_path(queue_path)
        self._vacuum_pages = max(_VACUUM_MIN_PAGES, reserve.size // 4 // _PAGE_BYTES)
        self._poke = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def take_reserve(self) -> None:
        """Hold the reserve at start; without room for it, the queue takes nothing for now."""
        await asyncio.to_thread(self._marker.unlink, missing_ok=True)
        if await asyncio.to_thread(self._reserve.take):
            return
        self._pause(
            f"no room on disk for the {self._reserve.size}-byte reserve: the queue takes no "
            "events until disk space returns"
        )

    def storage_full(self, exc: Exception) -> None:
        """A write found no disk space: pause the sources until space returns."""
        if not self._m.disk_full:
            log.error("queue storage is full (%s): pausing sources until space returns", exc)
        self._pause(f"disk full: {exc}")

    def release_reserve(self) -> bool:
        """An ack found no disk space: give it the reserve; ``False`` when none is held."""
        self._pause(self._m.last_error or "disk full")
        return self._reserve.release()

    def tight(self) -> bool:
        """Whether space is short enough that acks should give it back to the file system."""
        if self._m.disk_full or not self._reserve.present:
            return True
        try:
            return self._reserve.free_bytes() < self._reserve.size + self._resume_bytes()
        except OSError:
            return True

    async def reclaim(self, only_freed: bool = False) -> None:
        """Give free space back to the file system; the caller holds the writer's lock.

        A checkpoint may need the file to grow (the WAL holds pages beyond its end): without
        room for that, the reserve is released for it.
        """
        try:
            await self._db.run(transactions.reclaim, self._vacuum_pages, only_freed)
        except sqlite3.Error as exc:
            if not (schema.is_full(exc) and self._reserve.release()):
                log.debug("cannot give queue space back yet: %s", exc)
                return
        else:
            return
        try:
            await self._db.run(transactions.reclaim, self._vacuum_pages, only_freed)
        except sqlite3.Error as exc:
            log.debug("cannot give queue space back yet: %s", exc)

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

    def _pause(self, why: str) -> None:
        m = self._m
        m.last_error = why
        if not m.disk_full:
            m.disk_full = True
            _touch(self._marker)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="queue-disk-full")

    async def _run(self) -> None:
        m = self._m
        while m.disk_full and not self._stopping:
            self._poke.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):
                    await self._poke.wait()
            async with self._lock:  # go on returning what acks freed, a step at a time
                await self.reclaim(only_freed=True)
            if not await asyncio.to_thread(self._room_to_resume):
                await self._forget_acked_keys()
                continue
            async with self._lock:
                if not await self._probe():
                    continue
            log.warning("queue storage takes writes again: sources resume")
            m.disk_full = False
            m.last_error = None
            await asyncio.to_thread(self._marker.unlink, missing_ok=True)
            self._notify()

    async def _forget_acked_keys(self) -> None:
        """Still no room: drop dedupe keys of events the relay holds (all but the newest).

        On a small disk the keys can outgrow what acks give back; those of acknowledged
        events guard only against a publisher sending the same message again much later.
        """
        m = self._m
        if m.dedupe_rows <= DEDUPE_KEYS_KEPT_WHEN_FULL:
            log.debug("no dedupe keys to forget: %d kept", m.dedupe_rows)
            return
        async with self._lock:
            try:
                left = await self._db.run(
                    transactions.forget_acked_keys, m.acked_seq, DEDUPE_KEYS_KEPT_WHEN_FULL
                )
            except sqlite3.Error as exc:
                log.debug("cannot forget dedupe keys yet: %s", exc)
                return
        if left < m.dedupe_rows:
            log.warning(
                "the disk is full: forgot %d dedupe keys of acknowledged events to make room",
                m.dedupe_rows - left,
            )
        m.dedupe_rows = left

    def _resume_bytes(self) -> int:
        """Free space (beside the reserve) wanted before ingest resumes: the hysteresis."""
        st = os.statvfs(self._reserve.path.parent)
        share = int(st.f_blocks * st.f_frsize * _RESUME_MAX_SHARE)
        return min(max(2 * self._reserve.size, _RESUME_MIN_BYTES), share)

    def _room_to_resume(self) -> bool:
        """Take the reserve back once there is room for it; then look for the resume mark."""
        try:
            resume = self._resume_bytes()
            if not self._reserve.present:
                if self._reserve.free_bytes() < self._reserve.size + resume:
                    return False
                if not self._reserve.take():
                    return False
                log.warning("disk space has returned: the queue holds its disk reserve again")
            return self._reserve.free_bytes() >= resume
        except OSError as exc:
            log.warning("cannot check the disk for room: %s", exc)
            return False

    async def _probe(self) -> bool:
        """Commit (then free) a few pages: proves writes succeed (a page limit, say)."""
        try:
            await self._db.run(transactions.probe, PROBE_BYTES)
        except sqlite3.Error as exc:
            log.debug("queue storage still full: %s", exc)
            return False
        return True


def _touch(path: Path) -> None:
    """Create an empty file (it needs an inode, no data block: it works on a full disk)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o644))
    except OSError as exc:
        log.warning("cannot mark the queue full at %s: %s", path, exc)
