"""The uploader: drains the queue to the relay in signed batches, strictly in seq order.

One batch is in flight at a time. The queue deletes events only after the relay has said it
stored them (``acked_seq``), so a crash at any point at most resends what the relay already
has, and the relay answers that with 200 without storing it twice. Deleting (an fsync) runs
beside the uploads, through the latest acknowledged seq each time, since the next batch does
not depend on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.errors import TransientError
from agent.uploader.batching import BatchCollector
from agent.uploader.body import BodyEncoder, OutgoingBatch
from agent.uploader.config import RelayConfig
from agent.uploader.probe import LinkCheck
from agent.uploader.relay_client import (
    Acked,
    Gap,
    Refused,
    RelayClient,
    Reply,
    TooLarge,
    Unavailable,
)
from agent.uploader.stats import AckRate, UploaderStats
from runtime.backoff import Backoff

if TYPE_CHECKING:
    from agent.queue.store import QueueStore

logger = logging.getLogger(__name__)

#: Accepted batches in a row after which a batch size lowered by a 413 is doubled again.
REGROW_AFTER_SUCCESSES = 100


class _Alarm(NamedTuple):
    """A contradiction from the relay that a person must look at."""

    kind: str
    words: str


class Uploader:
    """Moves queued events to the relay until cancelled."""

    def __init__(
        self,
        config: RelayConfig,
        queue: QueueStore,
        gateway_id: str,
        private_key: Ed25519PrivateKey,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._config = config
        self._queue = queue
        self._gateway_id = gateway_id
        self._relay = RelayClient(config, private_key, client)
        self._collector = BatchCollector(
            queue, config.batch_max_bytes, config.batch_max_age_ms / 1000
        )
        self._encoder = BodyEncoder(gateway_id, config.compression)
        self._backoff = Backoff(config.backoff_initial_seconds, config.backoff_max_seconds)
        self._max_events = config.batch_max_events
        self._successes_at_size = 0
        self._acked = 0  # deleted from the queue
        self._ack_target = 0  # acknowledged by the relay: deleted or being deleted
        self._ack_wanted = asyncio.Event()
        self._next_seq = 1
        self._in_flight: tuple[int, int] | None = None
        self._last_success_at: datetime | None = None
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._alarm: str | None = None
        self._alarm_kind: str | None = None
        self._batches_sent = 0
        self._events_sent = 0
        self._bytes_sent = 0
        self._retries = 0
        self._relay_acked: int | None = None
        self._backoff_seconds = 0.0
        self._link_up = False
        self._failures_since_success = 0
        self._ack_rate = AckRate()
        self._link_check: LinkCheck | None = None
        self._last_exchange = 0.0  # time.monotonic() of the latest answer (or failure)

    def stats(self) -> UploaderStats:
        """A snapshot for the health page and ``/metrics``."""
        return UploaderStats(
            acked_seq=self._acked,
            in_flight=self._in_flight,
            last_success_at=self._last_success_at,
            last_error=self._last_error,
            last_error_at=self._last_error_at,
            alarm=self._alarm,
            batches_sent=self._batches_sent,
            events_sent=self._events_sent,
            bytes_sent=self._bytes_sent,
            retries=self._retries,
            relay_acked_seq=self._relay_acked,
            backoff_seconds=self._backoff_seconds,
            batch_max_events=self._max_events,
            link_up=self._link_up,
            ack_rate_per_second=self._ack_rate.per_second(),
            relay_clock_skew_seconds=self._relay.clock_skew_seconds,
            link_check=self._link_check.state if self._link_check else None,
            link_check_words=self._link_check.words if self._link_check else None,
            link_check_at=self._link_check.at if self._link_check else None,
        )

    async def run(self) -> None:
        """Upload until cancelled; every failure is retried, none ends the loop."""
        self._acked = self._ack_target = self._queue.stats().acked_seq
        self._next_seq = self._acked + 1
        logger.info(
            "uploading to %s from seq %d",
            self._relay.url,
            self._next_seq,
            extra={"gateway_id": self._gateway_id, "seq": self._next_seq},
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._delete_acked(), name="uploader-delete")
                if self._config.probe_interval_seconds > 0:
                    group.create_task(self._probe_while_idle(), name="uploader-probe")
                await self._upload()
        except ExceptionGroup as failed:
            if len(failed.exceptions) == 1:
                raise failed.exceptions[0] from None
            raise
        finally:
            await self._relay.aclose()

    async def _upload(self) -> None:
        """Post batch after batch, one at a time, each after the relay answered the previous.

        While a batch is in flight the next one is read and encoded from what is already
        queued; it is sent only if it is still what the next collect would give (it starts
        at the relay's next seq, and it is full or nothing was queued after it), so under a
        backlog the queue read and the compression overlap the relay's work, and a stream
        still gets everything that arrived during the flight.
        """
        retrying = False
        ahead: asyncio.Task[OutgoingBatch | None] | None = None
        try:
            while True:
                batch = await self._take_prepared(ahead, retrying)
                ahead = None
                if batch is None:
                    events = await self._collector.collect(
                        self._next_seq - 1, self._max_events, wait_for_more=not retrying
                    )
                    if not events:
                        continue
                    batch = self._encoder.encode(events)
                self._in_flight = (batch.first_seq, batch.last_seq)
                ahead = asyncio.create_task(self._prepare_after(batch), name="uploader-ahead")
                try:
                    reply = await self._relay.post(batch)
                finally:
                    self._in_flight = None
                    self._last_exchange = time.monotonic()
                delay = self._handle(batch, reply)
                retrying = delay is not None
                if delay:
                    self._backoff_seconds = delay
                    try:
                        await asyncio.sleep(delay)
                    finally:
                        self._backoff_seconds = 0.0
        finally:
            if ahead is not None:
                ahead.cancel()
                await asyncio.wait([ahead])

    async def _prepare_after(self, batch: OutgoingBatch) -> OutgoingBatch | None:
        """The batch that follows ``batch`` from events queued now, or None if there are none."""
        if self._queued_through() <= batch.last_seq:
            return None
        events = await self._queue.read_batch(
            batch.last_seq, self._max_events, self._config.batch_max_bytes
        )
        if not events or events[0].seq != batch.last_seq + 1:
            return None
        return self._encoder.encode(events)

    def _queued_through(self) -> int:
        """The highest seq committed to the queue and not yet deleted (0 when none)."""
        return self._queue.stats().last_seq or 0

    async def _take_prepared(
        self, ahead: asyncio.Task[OutgoingBatch | None] | None, retrying: bool
    ) -> OutgoingBatch | None:
        """The batch read ahead, if it is exactly what a collect would send now."""
        if ahead is None:
            return None
        try:
            batch = await ahead
        except TransientError:
            return None  # the collect that follows meets the same fault and waits it out
        if batch is None or retrying or self._config.batch_max_age_ms > 0:
            return None
        if batch.first_seq != self._next_seq or batch.count > self._max_events:
            return None
        full = batch.count == self._max_events
        if not full and self._queued_through() > batch.last_seq:
            return None  # more arrived during the flight: the next batch takes it all
        return batch

    async def _probe_while_idle(self) -> None:
        """Probe the relay at start, then whenever the link has been quiet for the interval."""
        interval = self._config.probe_interval_seconds
        while True:
            quiet = time.monotonic() - self._last_exchange
            if self._link_check is not None and quiet < interval:
                await asyncio.sleep(interval - quiet)
            elif self._in_flight is not None:
                await asyncio.sleep(interval)  # an upload is itself the check
            else:
                self._record_probe(await self._relay.probe(self._gateway_id))
                self._last_exchange = time.monotonic()

    def _record_probe(self, check: LinkCheck) -> None:
        previous = self._link_check
        self._link_check = check
        if check.acked_seq is not None:
            self._relay_acked = check.acked_seq  # the relay's word, as after an upload
        if previous is not None and previous.state == check.state:
            return
        extra = {
            "gateway_id": self._gateway_id,
            "error": None if check.state == "ok" else check.words,
        }
        if check.state == "ok":
            logger.info("relay probe: %s", check.words, extra=extra)
        elif check.state == "unreachable":
            logger.warning("relay probe: %s", check.words, extra=extra)
        else:
            logger.error("relay probe: %s", check.words, extra=extra)

    def _handle(self, batch: OutgoingBatch, reply: Reply) -> float | None:
        """Act on the relay's answer; return the delay before retrying, or None to go on."""
        match reply:
            case Acked(acked_seq=stored):
                return self._on_acked(batch, stored)
            case Gap(expected_seq=expected):
                return self._on_gap(batch, expected)
            case TooLarge(reason=reason):
                return self._on_too_large(batch, reason)
            case Refused(status=status, reason=reason):
                self._fail(reason, alarm=f"http-{status}")
                return self._backoff.next_delay()
            case Unavailable(reason=reason, retry_after=retry_after):
                self._fail(reason)
                delay = self._backoff.next_delay()
                if retry_after is not None and retry_after > 0:
                    delay = min(retry_after, self._backoff.max_seconds)
                return delay
        raise AssertionError(f"unhandled reply {reply!r}")

    def _on_acked(self, batch: OutgoingBatch, stored: int) -> float | None:
        self._batches_sent += 1
        self._events_sent += batch.count
        self._bytes_sent += len(batch.body)
        logger.debug(
            "batch %d..%d: relay has through %d",
            batch.first_seq,
            batch.last_seq,
            stored,
            extra={"gateway_id": self._gateway_id, "seq": stored},
        )
        alarm = self._follow_relay(stored)
        if alarm is not None:
            self._fail(alarm.words, alarm=alarm.kind)
            return self._backoff.next_delay()
        if stored < batch.first_seq:
            self._fail(
                f"relay answered 200 to batch {batch.first_seq}..{batch.last_seq} "
                f"but has stored only through seq {stored}"
            )
            return self._backoff.next_delay()
        self._succeed()
        return None

    def _on_gap(self, batch: OutgoingBatch, expected: int) -> float | None:
        alarm = self._follow_relay(expected - 1)
        if alarm is not None:
            self._fail(alarm.words, alarm=alarm.kind)
            return self._backoff.next_delay()
        if self._next_seq == batch.first_seq:
            # The relay asks for the very batch it just refused: waiting is all that is left.
            self._fail(
                f"relay refused batch {batch.first_seq}..{batch.last_seq} with 409 "
                f"while expecting seq {expected}"
            )
            return self._backoff.next_delay()
        self._retries += 1
        logger.info(
            "relay expects seq %d; resuming there",
            expected,
            extra={"gateway_id": self._gateway_id, "seq": expected},
        )
        return None

    def _on_too_large(self, batch: OutgoingBatch, reason: str) -> float | None:
        if batch.count <= 1:
            self._fail(f"{reason}; a single event cannot be split further", alarm="http-413")
            return self._backoff.next_delay()
        self._retries += 1
        self._max_events = max(1, batch.count // 2)
        self._successes_at_size = 0
        logger.warning(
            "%s; sending at most %d events per batch",
            reason,
            self._max_events,
            extra={"gateway_id": self._gateway_id},
        )
        return None

    def _follow_relay(self, stored: int) -> _Alarm | None:
        """Take the relay's highest contiguous stored seq as the new ack and send point.

        Returns an alarm when the relay contradicts what this gateway knows.
        """
        self._relay_acked = stored
        if stored < self._ack_target:
            # Events after ``stored`` were deleted here on the relay's word: they are gone.
            self._next_seq = self._ack_target + 1
            return _Alarm(
                "relay-lost-events",
                f"relay lost events it had acknowledged: it now has through seq {stored} but "
                f"acknowledged through {self._ack_target} before; seq {stored + 1}.."
                f"{self._ack_target} were deleted here and cannot be resent",
            )
        queue_stats = self._queue.stats()
        highest = max(queue_stats.last_seq or 0, queue_stats.acked_seq)
        alarm: _Alarm | None = None
        if stored > highest:
            alarm = _Alarm(
                "relay-ahead",
                f"relay claims seq 1..{stored} but this gateway has produced only "
                f"1..{highest}; is another agent using gateway id {self._gateway_id!r}? "
                f"events up to seq {stored} will be taken by the relay as already stored",
            )
            stored = highest
        if stored > self._ack_target:
            self._ack_target = stored
            self._ack_rate.record(stored)
            self._ack_wanted.set()
        self._next_seq = stored + 1
        return alarm

    async def _delete_acked(self) -> None:
        """Delete from the queue through the latest acknowledged seq, beside the uploads.

        Acknowledgements arriving during a delete are folded into the next one. A delete the
        queue cannot write is retried with backoff; meanwhile those events are merely kept
        here as well as at the relay, and a restart would only resend them.
        """
        backoff = Backoff(self._config.backoff_initial_seconds, self._config.backoff_max_seconds)
        while True:
            await self._ack_wanted.wait()
            self._ack_wanted.clear()
            while self._acked < self._ack_target:
                target = self._ack_target
                write = asyncio.ensure_future(self._queue.ack_through(target))
                try:
                    await asyncio.shield(write)
                except asyncio.CancelledError:
                    await asyncio.wait([write])  # finish the transaction begun, then stop
                    if not write.cancelled():
                        write.exception()  # retrieved: shutting down, it is not ours to report
                    raise
                except TransientError as exc:
                    self._last_error = f"cannot record the relay's acknowledgement: {exc}"
                    self._last_error_at = datetime.now(UTC)
                    if backoff.attempt == 0:
                        logger.warning(
                            "%s; retrying with backoff",
                            self._last_error,
                            extra={"gateway_id": self._gateway_id, "seq": target},
                        )
                    await asyncio.sleep(backoff.next_delay())
                    continue
                if backoff.attempt:
                    logger.info(
                        "the queue records acknowledgements again",
                        extra={"gateway_id": self._gateway_id, "seq": target},
                    )
                    backoff.reset()
                self._acked = target

    def _succeed(self) -> None:
        self._last_success_at = datetime.now(UTC)
        if self._link_check is not None and self._link_check.state != "ok":
            # An accepted upload answers every question a probe asks.
            self._link_check = LinkCheck("ok", "the relay accepts uploads", self._last_success_at)
        self._backoff.reset()
        if not self._link_up:
            if self._failures_since_success:
                logger.info(
                    "relay accepts uploads again after %d failed attempts",
                    self._failures_since_success,
                    extra={"gateway_id": self._gateway_id, "seq": self._acked},
                )
            else:
                logger.info("relay link up", extra={"gateway_id": self._gateway_id})
        if self._alarm is not None:
            logger.info("relay alarm cleared", extra={"gateway_id": self._gateway_id})
        self._link_up = True
        self._alarm = None
        self._alarm_kind = None
        self._failures_since_success = 0
        if self._max_events < self._config.batch_max_events:
            self._successes_at_size += 1
            if self._successes_at_size >= REGROW_AFTER_SUCCESSES:
                self._max_events = min(self._config.batch_max_events, self._max_events * 2)
                self._successes_at_size = 0

    def _fail(self, reason: str, *, alarm: str | None = None) -> None:
        """Record a failed attempt; ``alarm`` names the kind of refusal that needs a person."""
        self._retries += 1
        self._failures_since_success += 1
        self._last_error = reason
        self._last_error_at = datetime.now(UTC)
        if alarm is not None:
            if alarm != self._alarm_kind:
                logger.error(
                    "relay alarm: %s",
                    reason,
                    extra={"gateway_id": self._gateway_id, "error": reason},
                )
            self._alarm_kind = alarm
            self._alarm = reason
        elif self._link_up or self._failures_since_success == 1:
            logger.warning(
                "uploads failing, retrying with backoff: %s",
                reason,
                extra={"gateway_id": self._gateway_id, "error": reason},
            )
        self._link_up = False
