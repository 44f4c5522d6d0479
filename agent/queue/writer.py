"""Every write transaction of the queue: group commits and acks.

Group commit: one task takes all pending calls (up to ``commit_max_events``) into one
transaction. When it has been idle it first waits up to ``flush_interval_ms`` for company;
under load it commits as soon as the previous commit is done. Callers are resolved only after
COMMIT. A commit that fails is rolled back whole and fails only the calls it carried.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import sqlite3
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from agent.errors import (
    AgentError,
    QueueCorruptError,
    QueueFullError,
    RejectedError,
    TransientError,
)
from agent.queue import schema, transactions
from agent.queue.batchplan import Plan, Work
from agent.queue.config import QueueConfig
from agent.queue.dbthread import SqliteThread
from agent.queue.diskfull import DiskFullRecovery
from agent.queue.mirror import Mirror
from agent.queue.reserve import DiskReserve
from agent.text import printable

log = logging.getLogger(__name__)

#: Most event bytes one ack transaction deletes (its WAL frames take about as much): a
#: quarter of the disk reserve, within these bounds.
_ACK_CHUNK_MIN_BYTES = 64 * 1024
_ACK_CHUNK_MAX_BYTES = 4 * 1024 * 1024


class Writer:
    """Owns the writer connection; the store hands it work and reads the :class:`Mirror`."""

    def __init__(
        self,
        db: SqliteThread,
        path: Path,
        gateway_id: str,
        config: QueueConfig,
        mirror: Mirror,
        reserve: DiskReserve,
        notify: Callable[[], None],
    ) -> None:
        self._db = db
        self._path = path
        self._gateway_id = gateway_id
        self._cfg = config
        self._m = mirror
        self._reserve = reserve
        quarter = reserve.size // 4 if reserve.size else _ACK_CHUNK_MAX_BYTES
        self._ack_chunk_bytes = max(_ACK_CHUNK_MIN_BYTES, min(_ACK_CHUNK_MAX_BYTES, quarter))
        self._notify = notify
        self._lock = asyncio.Lock()  # one transaction at a time on this connection
        self._work: deque[Work] = deque()
        self._work_events = 0
        self._wake = asyncio.Event()
        self._batch_ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._recovery = DiskFullRecovery(db, self._lock, path, config, mirror, reserve, notify)
        self._closing = False
        self._dead: AgentError | None = None
        self._last_commit_end = float("-inf")

    async def start(self) -> None:
        """Take the disk reserve and start the group-commit task."""
        await self._recovery.take_reserve()
        self._task = asyncio.create_task(self._run(), name="queue-writer")
        self._task.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        """A writer that died must not leave callers waiting forever."""
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        log.critical("the queue writer stopped: %s", exc, exc_info=exc)
        self._m.last_error = f"queue writer stopped: {exc}"
        self._dead = AgentError(self._m.last_error)
        for work in self._work:
            if not work.future.done():
                work.future.set_exception(self._dead)
        self._work.clear()
        self._notify()

    def push(self, work: Work) -> None:
        """Hand a call to the next commit."""
        if self._dead is not None:
            raise self._dead
        self._work.append(work)
        self._work_events += work.n_events
        self._m.inflight_bytes += work.estimate
        self._wake.set()
        if self._work_events >= self._cfg.commit_max_events:
            self._batch_ready.set()

    async def ping(self) -> bool:
        """Whether the group-commit task lives and its thread answers (after queued work).

        Cancelling the wait is safe: the probe itself does nothing on the connection.
        """
        if self._closing or self._dead is not None or self._task is None or self._task.done():
            return False
        await self._db.submit(_answer)
        return True

    async def close(self) -> None:
        """Commit what is pending, stop the tasks; the caller closes the connection."""
        self._closing = True
        self._wake.set()
        self._batch_ready.set()
        try:
            if self._task is not None:
                await asyncio.wait([self._task])  # a crash was logged when it happened
        finally:
            await self._recovery.stop()
            for work in self._work:
                if not work.future.done():
                    work.future.set_exception(AgentError("the queue is closed"))
            self._work.clear()

    # ------------------------------------------------------------------------ group commit

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        flush_s = self._cfg.flush_interval_ms / 1000.0
        while True:
            if not self._work:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            idle = loop.time() - self._last_commit_end >= flush_s
            if (
                flush_s > 0
                and idle
                and not self._closing
                and self._work_events < self._cfg.commit_max_events
            ):
                self._batch_ready.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(flush_s):
                        await self._batch_ready.wait()
            batch = self._take_batch()
            async with self._lock:
                await self._commit(batch)
            self._last_commit_end = loop.time()

    def _take_batch(self) -> list[Work]:
        batch: list[Work] = []
        n = 0
        while self._work and (
            not batch or n + self._work[0].n_events <= self._cfg.commit_max_events
        ):
            work = self._work.popleft()
            n += work.n_events
            self._work_events -= work.n_events
            batch.append(work)
        return batch

    async def _commit(self, batch: list[Work]) -> None:
        """Write ``batch`` in one transaction and resolve its callers after COMMIT."""
        if self._m.disk_full:
            batch = self._hold_back(batch)
            if not batch:
                return
        now = time.time()
        estimate = sum(w.estimate for w in batch)
        m = self._m
        dedupe_new = sum(1 for w in batch for ev in w.events if ev.dedupe_key is not None)
        prune = m.dedupe_rows + dedupe_new > self._dedupe_limit()
        done = self._db.submit(transactions.commit_batch, batch, self._base(prune), now)
        try:
            plan = await asyncio.shield(done)
        except asyncio.CancelledError:
            # The transaction runs on regardless: finish it and tell its callers the truth.
            await asyncio.wait([done])
            m.inflight_bytes -= estimate
            if done.cancelled() or done.exception() is not None:
                self._fail(batch, AgentError("the queue writer was stopped"))
            else:
                self._succeed(batch, done.result(), now, prune)
            raise
        except Exception as exc:
            if len(batch) > 1 and _is_item_specific(exc):
                await self._commit_one_by_one(batch, exc)
                return
            m.inflight_bytes -= estimate
            self._fail(batch, exc)
            return
        m.inflight_bytes -= estimate
        self._succeed(batch, plan, now, prune)

    def _hold_back(self, batch: list[Work]) -> list[Work]:
        """Refuse the events and state of calls admitted before the disk filled: the room
        left (the released reserve) is for acks. Returns the calls that may still go."""
        error = QueueFullError(f"queue storage is full: {self._m.last_error}")
        rest = []
        for work in batch:
            if work.events or work.state:
                self._m.inflight_bytes -= work.estimate
                if not work.future.done():
                    work.future.set_exception(error)
            else:
                rest.append(work)
        self._notify()
        return rest

    async def _commit_one_by_one(self, batch: list[Work], exc: Exception) -> None:
        """A group commit failed because of what one of its calls holds: commit each alone,
        so that only the call at fault fails."""
        log.warning(
            "a queue commit of %d calls failed (%s): committing them one by one", len(batch), exc
        )
        for i, work in enumerate(batch):
            try:
                await self._commit([work])
            except BaseException:
                rest = batch[i + 1 :]
                self._m.inflight_bytes -= sum(w.estimate for w in rest)
                self._fail(rest, AgentError("the queue writer was stopped"))
                raise

    def _base(self, prune_dedupe: bool = False) -> transactions.Base:
        m = self._m
        return transactions.Base(
            path=self._path,
            gateway_id=self._gateway_id,
            next_seq=m.next_seq,
            acked_seq=m.acked_seq,
            seq_ceiling=m.seq_ceiling,
            bytes=m.bytes,
            enqueued=m.enqueued,
            duplicates=m.duplicates,
            shed=m.shed,
            rejected=m.rejected,
            prune_dedupe_to=self._cfg.dedupe_keys_kept if prune_dedupe else None,
            reject_rows=self._cfg.reject_table_rows,
        )

    def _dedupe_limit(self) -> int:
        kept = self._cfg.dedupe_keys_kept
        return kept + max(100, kept // 10)

    def _succeed(self, batch: list[Work], plan: Plan, now: float, pruned: bool) -> None:
        self._apply(plan, now, pruned)
        for work, results in zip(batch, plan.results, strict=True):
            if not work.future.done():
                work.future.set_result(results)
        self._notify()

    def _apply(self, plan: Plan, now: float, pruned: bool) -> None:
        """Bring the mirror in step with a committed plan."""
        m = self._m
        if plan.events:
            if m.first_seq is None:
                m.first_seq, m.first_created = plan.events[0][0], now
            m.avg_body_bytes = plan.bytes / len(plan.events)
        m.next_seq = plan.next_seq
        m.bytes += plan.bytes
        m.enqueued += len(plan.events)
        m.duplicates += plan.duplicates
        m.dedupe_rows += len(plan.dedupe)
        if pruned and plan.dedupe:
            m.dedupe_rows = min(m.dedupe_rows, self._cfg.dedupe_keys_kept)
        if plan.seq_ceiling is not None:
            m.seq_ceiling = plan.seq_ceiling
        m.commits += 1
        if not m.disk_full:
            m.last_error = None

    def _fail(self, batch: list[Work], exc: Exception) -> None:
        """Fail every caller of a rolled-back commit with the error that fits the cause."""
        error: Exception
        if _is_no_space(exc):
            self._recovery.storage_full(exc)
            error = QueueFullError(f"queue storage is full: {exc}")
        elif _is_item_specific(exc):
            log.warning("a queue call cannot be stored: %s", exc)
            error = RejectedError(f"cannot be stored: {type(exc).__name__}: {printable(str(exc))}")
        elif isinstance(exc, sqlite3.Error) and schema.is_damage(exc):
            log.critical(
                "queue file %s is damaged: %s; restart the agent to move it aside", self._path, exc
            )
            self._m.last_error = f"queue file damaged: {exc}"
            error = QueueCorruptError(self._m.last_error)
        elif isinstance(exc, sqlite3.Error | OSError):
            log.error("queue commit failed: %s", exc)
            self._m.last_error = f"commit failed: {exc}"
            error = TransientError(self._m.last_error)
        else:
            log.error("queue commit failed unexpectedly", exc_info=exc)
            self._m.last_error = f"commit failed: {type(exc).__name__}: {exc}"
            error = exc
        lost_rejects = 0
        for work in batch:
            if work.future.done():
                continue
            if work.events or work.state:
                work.future.set_exception(error)
            else:  # a reject that cannot be kept is counted, not raised at the source
                lost_rejects += len(work.rejects)
                work.future.set_result([])
        if lost_rejects:
            log.warning("%d rejected payloads could not be kept: %s", lost_rejects, exc)
        self._notify()

    # --------------------------------------------------------------------------------- acks

    async def ack_through(self, seq: int) -> None:
        """Delete events up to ``seq`` and persist ``acked_seq`` in the same transaction.

        A long range is deleted in chunks, each its own transaction: deleting rows rewrites
        their pages into the WAL, and a chunk must fit in the disk reserve when the disk is
        full. Acking everything clears the table, which frees pages without rewriting them.
        """
        m = self._m
        if seq > m.next_seq - 1:
            log.warning(
                "ack through %d is beyond the last queued seq %d",
                seq,
                m.next_seq - 1,
                extra={"seq": seq},
            )
            seq = m.next_seq - 1
        while seq > m.acked_seq:
            async with self._lock:
                last = m.next_seq - 1
                if seq == last:
                    end = last
                else:
                    chunk = max(1, int(self._ack_chunk_bytes / max(1.0, m.avg_body_bytes)))
                    end = min(seq, m.acked_seq + chunk)
                out = await self._ack_chunk(end, end == last)
                m.acked_seq, m.bytes = end, out.bytes
                m.first_seq, m.first_created = out.first_seq, out.first_created
                if self._recovery.tight():
                    await self._recovery.reclaim()
            self._notify()
        self._recovery.poke()

    async def _ack_chunk(self, end: int, everything: bool) -> transactions.AckOutcome:
        """One ack transaction; without disk space, again with the reserve given to it."""
        try:
            return await self._db.run(transactions.ack_chunk, end, everything, self._base())
        except sqlite3.Error as exc:
            if not _is_no_space(exc):
                raise TransientError(f"cannot record the ack through seq {end}: {exc}") from exc
            self._recovery.storage_full(exc)
            released = self._recovery.release_reserve()
            await self._recovery.reclaim()
            log.warning(
                "no disk space to record an ack: retrying with %s",
                "the reserve released" if released else "what the WAL gave back",
                extra={"seq": end},
            )
        try:
            return await self._db.run(transactions.ack_chunk, end, everything, self._base())
        except sqlite3.Error as exc:
            raise TransientError(f"cannot record the ack through seq {end}: {exc}") from exc


def _answer(conn: sqlite3.Connection) -> None:
    """The liveness probe's round trip: runs on the writer's thread, touches nothing."""


def _is_no_space(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return schema.is_full(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _is_item_specific(exc: BaseException) -> bool:
    """Whether a failed commit failed for what a call holds, not for the file or the disk.

    Binding a value SQLite cannot take (text without a UTF-8 form, a list, a huge integer) is;
    I/O errors, a full disk, a locked or damaged file are not.
    """
    if isinstance(exc, sqlite3.InterfaceError | sqlite3.ProgrammingError | sqlite3.DataError):
        return True
    if isinstance(exc, sqlite3.Error | OSError):
        return False
    return isinstance(exc, TypeError | ValueError | OverflowError | RecursionError)
