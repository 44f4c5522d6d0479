"""The durable store-and-forward queue: events wait in one SQLite file until the relay acks them.

``enqueue`` returns only after the COMMIT holding the events is durable (group commit, see
:mod:`agent.queue.writer`); each event gets a UUIDv7 ``id`` and the gateway's next gapless
``seq``, and its body is the canonical JSON of the wire event, uploaded byte for byte. Reads go
through a second connection that sees only committed events. A byte limit with an overflow
policy keeps the disk from filling; a disk that fills anyway pauses sources until it has room.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path

from agent.errors import AgentError, QueueFullError, RejectedError
from agent.queue.batchplan import Work
from agent.queue.body import EncodedEvent, encode_event
from agent.queue.config import QueueConfig
from agent.queue.model import EnqueueResult, NewEvent, QueueStats, Reject, StoredEvent
from agent.queue.opening import OpenedQueue, open_queue
from agent.queue.reserve import DiskReserve
from agent.queue.writer import Writer
from agent.text import has_utf8_form, printable
from wire.events import DATA_MODELS, TELEMETRY_TYPES

log = logging.getLogger(__name__)

_SHED = EnqueueResult(seq=None, shed=True)
#: Longest reject payload, and longest source, location and reason text, kept (cut beyond).
_PAYLOAD_MAX_BYTES = 64 * 1024
_TEXT_MAX_CHARS = 1024
_NO_UTF8 = "it holds a lone UTF-16 surrogate, which has no UTF-8 form"


class QueueStore:
    """A gateway's durable queue of events, in seq order, until the relay acknowledges them."""

    def __init__(
        self, path: Path, gateway_id: str, config: QueueConfig, opened: OpenedQueue
    ) -> None:
        """Use :meth:`open`; this only wires together what it has opened."""
        self._path = path
        self._cfg = config
        self._opened = opened
        self._m = opened.mirror
        self._changed = asyncio.Event()
        self._closing = False
        self._closed = False
        reserve = DiskReserve(path, config.disk_reserve_bytes)
        self._writer = Writer(
            opened.writer, path, gateway_id, config, self._m, reserve, self._notify
        )
        self._r = opened.reader
        self._gateway_id = gateway_id

    @classmethod
    async def open(cls, path: Path, gateway_id: str, config: QueueConfig) -> QueueStore:
        """Open (or create) the queue at ``path`` for ``gateway_id`` and start its writer."""
        opened = await open_queue(path, gateway_id, config)
        store = cls(path, gateway_id, config, opened)
        try:
            await store._writer.start()
        except BaseException:
            await opened.reader.close()
            await opened.writer.close()
            os.close(opened.lock_fd)
            raise
        log.info(
            "queue %s open: %d pending, next seq %d, acked seq %d",
            path,
            store._m.pending(),
            store._m.next_seq,
            store._m.acked_seq,
            extra={"gateway_id": gateway_id},
        )
        return store

    async def close(self) -> None:
        """Commit what is pending, stop the writer and close the file."""
        if self._closed or self._closing:
            return
        self._closing = True
        try:
            await self._writer.close()
        finally:
            self._closed = True
            self._notify()
            try:
                await self._r.close()
                await self._opened.writer.close()
            finally:
                os.close(self._opened.lock_fd)

    # ----------------------------------------------------------------------------- writing

    async def enqueue(
        self,
        events: Sequence[NewEvent],
        state: Mapping[str, str] | None = None,
        *,
        isolate_rejects: bool = False,
    ) -> list[EnqueueResult]:
        """Queue ``events`` and write ``state`` in one transaction; return after it is durable.

        Raises :class:`QueueFullError` (writing nothing of this call) when the overflow policy
        refuses it, and :class:`RejectedError` for an unknown type, a naive ``occurred_at``, data
        that is not JSON or text that cannot be stored (also writing nothing). With
        ``isolate_rejects``, an event that cannot be stored is left out instead, its result
        saying why (``rejected``), and the others are queued.
        """
        self._check_open()
        pre = self._admit(events)
        if state and self._m.disk_full:
            raise QueueFullError(self._full_reason())
        n_shed = sum(1 for res in pre if res is _SHED)
        encoded = self._encode(events, pre, isolate_rejects)
        _check_state(state)
        n_write = pre.count(None)
        if n_shed:
            self._m.shed += n_shed
            log.debug("shed %d telemetry events: the queue is nearly full", n_shed)
        if not n_write and not state:
            return [res or _SHED for res in pre]
        work = Work(
            events=list(events),
            pre=pre,
            encoded=encoded,
            state=list(state.items()) if state else [],
            rejects=[],
            estimate=sum(e.size_estimate() for e in encoded if e is not None),
            future=asyncio.get_running_loop().create_future(),
        )
        self._writer.push(work)
        return await work.future

    def _admit(self, events: Sequence[NewEvent]) -> list[EnqueueResult | None]:
        """Apply the byte limit and overflow policy; raise before anything is written."""
        for i, ev in enumerate(events):
            if ev.type not in DATA_MODELS:
                raise RejectedError(f"event {i}: unknown event type {ev.type!r}")
            if ev.occurred_at.tzinfo is None:
                raise RejectedError(f"event {i}: occurred_at must carry a UTC offset")
        cfg, m = self._cfg, self._m
        used, limit = m.used_bytes(), cfg.max_bytes
        full = m.disk_full or used >= limit
        if cfg.on_full == "reject":
            if full and events:
                raise QueueFullError(self._full_reason())
            return [None] * len(events)
        shedding = full or used >= cfg.shed_telemetry_at_fraction * limit
        pre: list[EnqueueResult | None] = []
        for ev in events:
            if shedding and ev.type in TELEMETRY_TYPES:
                pre.append(_SHED)
            elif full:
                raise QueueFullError(self._full_reason())
            else:
                pre.append(None)
        return pre

    def _encode(
        self, events: Sequence[NewEvent], pre: list[EnqueueResult | None], isolate: bool
    ) -> list[EncodedEvent | None]:
        """Encode the events to write (in the caller's time, not the writer's).

        An event that cannot be stored raises :class:`RejectedError`, or with ``isolate`` has
        its entry in ``pre`` replaced by a rejected result.
        """
        out: list[EncodedEvent | None] = []
        for i, (ev, res) in enumerate(zip(events, pre, strict=True)):
            if res is not None:
                out.append(None)
                continue
            try:
                out.append(self._encode_one(ev))
            except RejectedError as exc:
                if not isolate:
                    raise RejectedError(f"event {i}: {exc}") from exc
                pre[i] = EnqueueResult(seq=None, rejected=str(exc))
                out.append(None)
        return out

    def _encode_one(self, event: NewEvent) -> EncodedEvent:
        key = event.dedupe_key
        if not _storable(key):
            assert key is not None
            raise RejectedError(f"dedupe_key {key!r} cannot be stored: {_NO_UTF8}")
        try:
            return encode_event(event, self._gateway_id)
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end]
            raise RejectedError(f"a text in it ({bad!r}) cannot be stored: {_NO_UTF8}") from exc
        except (TypeError, ValueError) as exc:
            raise RejectedError(f"data cannot be encoded as JSON: {exc}") from exc
        except RecursionError as exc:
            raise RejectedError("data is nested too deeply to be encoded") from exc

    def _full_reason(self) -> str:
        if self._m.disk_full:
            return f"queue storage is full: {self._m.last_error}"
        return f"queue is full: {self._m.used_bytes()} of {self._cfg.max_bytes} bytes used"

    @property
    def is_full(self) -> bool:
        """Whether an enqueue of a stock-moving event would be refused right now."""
        m = self._m
        return m.disk_full or m.used_bytes() >= self._cfg.max_bytes

    async def wait_until_writable(self) -> None:
        """Return once enqueue would no longer be refused (acks freed space, or the disk did)."""
        while self.is_full:
            self._check_open()
            await self._changed.wait()

    # ------------------------------------------------------------------- reading and acking

    async def wait_until_pending(self, after_seq: int) -> None:
        """Return once an event with ``seq > after_seq`` is committed."""
        while self._m.next_seq - 1 <= after_seq:
            self._check_open()
            await self._changed.wait()

    async def read_batch(
        self, after_seq: int, max_events: int, max_bytes: int
    ) -> list[StoredEvent]:
        """Committed events after ``after_seq`` in seq order, within both limits (at least one)."""
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self._check_open()
        rows = await self._r.execute_fetchall(
            "SELECT seq, id, type, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, max_events),
        )
        out: list[StoredEvent] = []
        total = 0
        for seq, event_id, event_type, body in rows:
            total += len(body)
            if out and total > max_bytes:
                break
            out.append(StoredEvent(int(seq), str(event_id), str(event_type), bytes(body)))
        return out

    async def ack_through(self, seq: int) -> None:
        """Delete events with seq <= ``seq`` and persist ``acked_seq``; idempotent.

        Raises :class:`TransientError` when the ack cannot be written (retry later).
        """
        self._check_open()
        if seq > self._m.acked_seq:
            await self._writer.ack_through(seq)

    async def get_state(self, key: str) -> str | None:
        """The committed value of a source's state ``key``."""
        self._check_open()
        rows = list(await self._r.execute_fetchall("SELECT value FROM state WHERE key = ?", (key,)))
        return str(rows[0][0]) if rows else None

    # ------------------------------------------------------------------------------ rejects

    async def record_reject(self, source: str, where: str, reason: str, payload: bytes) -> None:
        """Keep a refused payload with its reason; returns once it is committed.

        The newest ``reject_table_rows`` are kept; the total count survives restarts. Text
        without a UTF-8 form is kept escaped (:func:`agent.text.printable`). A reject that
        cannot be written (disk full) is counted and logged, never raised.
        """
        self._check_open()
        self._m.rejected += 1
        row = (
            time.time(),
            printable(source[:_TEXT_MAX_CHARS]),
            printable(where[:_TEXT_MAX_CHARS]),
            printable(reason[:_TEXT_MAX_CHARS]),
            bytes(payload[:_PAYLOAD_MAX_BYTES]),
        )
        work = Work(
            events=[],
            pre=[],
            encoded=[],
            state=[],
            rejects=[row],
            estimate=0,
            future=asyncio.get_running_loop().create_future(),
        )
        self._writer.push(work)
        await work.future

    async def recent_rejects(self, limit: int = 20) -> list[Reject]:
        """The newest rejects, newest first."""
        self._check_open()
        rows = await self._r.execute_fetchall(
            "SELECT at, source, location, reason, payload FROM rejects ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [
            Reject(datetime.fromtimestamp(float(at), UTC), str(src), str(loc), str(why), bytes(p))
            for at, src, loc, why, p in rows
        ]

    # -------------------------------------------------------------------------------- stats

    async def ping(self) -> bool:
        """Whether the writer is alive and its thread answers; the watchdog's liveness probe.

        Waits behind transactions already queued on the thread: a writer stuck in one never
        answers, so callers bound the wait with a timeout.
        """
        if self._closing or self._closed:
            return False
        return await self._writer.ping()

    def stats(self) -> QueueStats:
        """A snapshot from memory: cheap enough for every health check and scrape."""
        m = self._m
        pending = m.pending()
        age = None
        if pending and m.first_created is not None:
            age = max(0.0, time.time() - m.first_created)
        return QueueStats(
            pending=pending,
            first_seq=m.first_seq if pending else None,
            last_seq=m.next_seq - 1 if pending else None,
            acked_seq=m.acked_seq,
            bytes=m.bytes,
            max_bytes=self._cfg.max_bytes,
            oldest_age_seconds=age,
            full=self.is_full,
            rejected=m.rejected,
            shed=m.shed,
            duplicates=m.duplicates,
            enqueued_total=m.enqueued,
            commits_total=m.commits,
            last_error=m.last_error,
            moved_aside=self._opened.moved_aside,
        )

    def _notify(self) -> None:
        """Wake every waiter so it re-checks its condition."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _check_open(self) -> None:
        if self._closing or self._closed:
            raise AgentError("the queue is closed")


def _storable(text: object) -> bool:
    """Whether a string can be bound as SQLite text (anything else is left to the commit)."""
    return not isinstance(text, str) or text.isascii() or has_utf8_form(text)


def _check_state(state: Mapping[str, str] | None) -> None:
    if not state:
        return
    for key, value in state.items():
        if not (_storable(key) and _storable(value)):
            raise RejectedError(f"state {str(key)!r} cannot be stored: {_NO_UTF8}")
