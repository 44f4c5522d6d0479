"""Gathering the next batch from the queue, bounded by count, bytes and age.

A batch is what is pending when the uploader is free to send: with the link idle a lone event
goes at once, and whatever arrives while a batch is in flight makes the next one, so batches
grow with the load (as Nagle's algorithm gathers bytes behind an unacknowledged segment).
Under a backlog a batch is full at the first read. A positive ``max_age_seconds`` also makes a
batch that is not full wait that long for company.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from agent.queue.model import StoredEvent


class PendingEvents(Protocol):
    """The part of the queue a batch is read from."""

    async def wait_until_pending(self, after_seq: int) -> None: ...

    async def read_batch(
        self, after_seq: int, max_events: int, max_bytes: int
    ) -> list[StoredEvent]: ...


class BatchCollector:
    """Reads contiguous runs of pending events in seq order."""

    def __init__(self, queue: PendingEvents, max_bytes: int, max_age_seconds: float) -> None:
        self._queue = queue
        self._max_bytes = max_bytes
        self._max_age = max_age_seconds

    async def collect(
        self, after_seq: int, max_events: int, *, wait_for_more: bool
    ) -> list[StoredEvent]:
        """The events after ``after_seq``, waiting until there is at least one.

        A single event larger than the byte limit still makes a batch of one, so that it can
        reach the relay (which decides whether it is too large). With ``wait_for_more`` a batch
        that is not full waits up to the age limit for more events.
        """
        await self._queue.wait_until_pending(after_seq)
        events = await self._queue.read_batch(after_seq, max_events, self._max_bytes)
        if not events or not wait_for_more or self._max_age <= 0:
            return events
        size = sum(len(event.body) for event in events)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_age
        while len(events) < max_events and size < self._max_bytes:
            try:
                async with asyncio.timeout_at(deadline):
                    await self._queue.wait_until_pending(events[-1].seq)
            except TimeoutError:
                break
            more = await self._queue.read_batch(
                events[-1].seq, max_events - len(events), self._max_bytes - size
            )
            if not more:
                break
            for event in more:
                if size + len(event.body) > self._max_bytes:
                    return events
                events.append(event)
                size += len(event.body)
        return events
