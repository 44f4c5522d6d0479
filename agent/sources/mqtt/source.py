"""The MQTT source: subscribed messages become queued events, PUBACKed only after COMMIT.

Messages are mapped as they are read and gathered into a chunk; one committer task enqueues a
chunk at a time (so events from a topic are queued in arrival order) while the next chunk fills,
and acknowledges a chunk's messages only once its commit is durable. Rejected messages are
acknowledged after their reject record is written, duplicates after the dedupe check.

When the queue is full the source stops reading and waits, holding what it has unacknowledged.
A pause longer than half the keep-alive interval would starve the connection of keep-alive
traffic, so then it disconnects instead (the broker keeps the session and every unacknowledged
message) and connects again once the queue has room.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.errors import QueueFullError, RejectedError, TransientError
from agent.queue.model import EnqueueResult, NewEvent
from agent.queue.store import QueueStore
from agent.sources.mqtt.config import MqttConfig
from agent.sources.mqtt.credentials import read_password, tls_context
from agent.sources.mqtt.link import LinkOptions, Message, MqttLink
from agent.sources.mqtt.rules import RuleBook
from agent.sources.mqtt.takeover import TakeoverWatch
from agent.sources.rejects import RejectLog
from agent.text import printable
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

#: Queue state key under which the subscribed topic filters are remembered between runs.
FILTERS_STATE_KEY = "mqtt.subscriptions"
#: Bytes of a rejected payload kept with its reason.
REJECT_PAYLOAD_BYTES = 1024
_RETRY_MIN_SECONDS = 0.1
_RETRY_MAX_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class MqttStats:
    """A snapshot of the MQTT source for the health page and ``/metrics``."""

    connected: bool
    since: datetime | None
    """When the source last connected (while connected) or lost the connection."""
    last_message_at: datetime | None
    received: int
    queued: int
    duplicates: int
    rejected: int
    last_reject: str | None
    paused: bool
    """Reading is paused because the queue is full."""
    reconnects: int
    last_error: str | None
    unacked: int = 0
    """Messages held without PUBACK right now (at most ``max_unacked_messages``)."""
    shed: int = 0
    """Telemetry events the queue dropped under its overflow policy."""
    broker: str | None = None
    """``host:port`` of the broker, so a person sees which one is meant."""
    duplicate_client: str | None = None
    """Set while the broker keeps dropping us right after connecting: another client with our
    client id (see :mod:`agent.sources.mqtt.takeover`)."""
    rejected_recently: int = 0
    """Payloads rejected in the last few minutes (:data:`agent.sources.rejects.RECENT_SECONDS`)."""
    last_reject_at: datetime | None = None


@dataclass(slots=True)
class _Chunk:
    """Messages of one connection mapped since the last commit started."""

    link: MqttLink
    events: list[NewEvent] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    rejects: list[tuple[str, str, bytes]] = field(default_factory=list)
    rejected: list[Message] = field(default_factory=list)


class MqttSource:
    """Reads the configured subscriptions and queues one event per accepted message."""

    def __init__(self, config: MqttConfig, queue: QueueStore, client_id: str) -> None:
        self._cfg = config
        self._queue = queue
        self._rules = RuleBook(config.subscriptions)
        self._options = LinkOptions(
            client_id=client_id,
            username=config.username,
            password=read_password(config),
            tls=tls_context(config),
            tls_insecure=bool(config.tls and config.tls.insecure_skip_verify),
        )
        self._link: MqttLink | None = None
        self._open: _Chunk | None = None
        self._wake = asyncio.Event()
        self._known_filters: list[str] = []
        self._connected = False
        self._since: datetime | None = None
        self._last_message_at: datetime | None = None
        self._received = 0
        self._queued = 0
        self._duplicates = 0
        self._shed = 0
        self._rejected = 0
        self._last_reject: str | None = None
        self._reject_log = RejectLog("MQTT", log)
        self._takeover = TakeoverWatch(client_id, 2 * config.reconnect_max_seconds)
        self._paused = False
        self._reconnects = 0
        self._last_error: str | None = None
        self._unexpected = 0

    # --------------------------------------------------------------------------- running

    async def run(self) -> None:
        """Connect, read and queue until cancelled; reconnect with capped, jittered backoff."""
        known = await self._queue.get_state(FILTERS_STATE_KEY)
        self._known_filters = json.loads(known) if known else []
        for sub in self._cfg.subscriptions:
            if sub.qos == 2:
                log.warning(
                    "subscription %s uses QoS 2: a message caught between PUBREC and PUBREL "
                    "when the agent is killed is not delivered again; prefer QoS 1 with a "
                    "dedupe_key",
                    sub.topic,
                )
        committer = asyncio.create_task(self._commit_loop(), name="mqtt-commit")
        connector = asyncio.create_task(self._connect_loop(), name="mqtt-connect")
        try:
            done, _ = await asyncio.wait({committer, connector}, return_when="FIRST_COMPLETED")
            for task in done:
                task.result()  # re-raise what ended it
        finally:
            for task in (connector, committer):
                task.cancel()
            await asyncio.gather(connector, committer, return_exceptions=True)
            if self._link is not None:
                self._link.close()

    async def _connect_loop(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self._cfg
        backoff = Backoff(cfg.reconnect_min_seconds, cfg.reconnect_max_seconds)
        while True:
            if self._queue.is_full:
                self._paused = True
                try:
                    await self._queue.wait_until_writable()
                finally:
                    self._paused = False
            started = loop.time()
            try:
                await self._session()
            except TransientError as exc:
                self._last_error = str(exc)
                log.warning("MQTT broker %s:%d: %s", cfg.host, cfg.port, exc)
            if loop.time() - started >= cfg.reconnect_max_seconds:
                backoff.reset()  # it ran a good while: a fresh failure
            self._reconnects += 1
            await asyncio.sleep(backoff.next_delay())

    async def _session(self) -> None:
        """One connection, from CONNECT until it is lost."""
        cfg = self._cfg
        link = MqttLink(cfg, self._options, self._deliver)
        self._link = link
        try:
            session_present = await link.connect(timeout_seconds=float(cfg.keepalive_seconds))
            self._takeover.connected()
            await self._subscribe(link, session_present)
            self._set_connected(True)
            log.info(
                "connected to MQTT broker %s:%d as %s (MQTT %s, session %s)",
                cfg.host,
                cfg.port,
                self._options.client_id,
                cfg.protocol,
                "resumed" if session_present else "new",
            )
            why = await link.wait_closed()
            self._last_error = f"disconnected: {why}"
            log.warning("disconnected from MQTT broker %s:%d: %s", cfg.host, cfg.port, why)
        finally:
            link.close()
            # Done by now (closed above at the latest): what ended the session, for the watch.
            if self._takeover.closed(await link.wait_closed()):
                log.error("MQTT broker %s:%d: %s", cfg.host, cfg.port, self._takeover.suspect)
            if self._open is not None and self._open.link is link:
                # Not committed, not acknowledged: the broker sends these again.
                self._open = None
            if self._connected:
                self._set_connected(False)

    async def _subscribe(self, link: MqttLink, session_present: bool) -> None:
        """(Re)subscribe every filter; drop filters the session has but the config no longer.

        The filters possibly held by the broker's session are remembered in the queue's state,
        written before subscribing, so a filter removed from the configuration is unsubscribed
        even after a crash.
        """
        timeout = float(self._cfg.keepalive_seconds)
        filters = [(sub.topic, sub.qos) for sub in self._cfg.subscriptions]
        current = sorted({topic for topic, _ in filters})
        known = self._known_filters
        stale = [f for f in known if f not in current] if session_present else []
        await self._remember_filters(sorted({*current, *stale}))
        refused = await link.subscribe(filters, timeout)
        for topic_filter in refused:
            log.warning("the MQTT broker refused the subscription %s", topic_filter)
        if refused:
            self._last_error = f"subscriptions refused by the broker: {', '.join(refused)}"
        if stale:
            log.info("unsubscribing from filters no longer configured: %s", ", ".join(stale))
            await link.unsubscribe(stale, timeout)
            await self._remember_filters(current)

    async def _remember_filters(self, filters: list[str]) -> None:
        if filters != self._known_filters:
            await self._queue.enqueue([], state={FILTERS_STATE_KEY: json.dumps(filters)})
            self._known_filters = filters

    def _set_connected(self, connected: bool) -> None:
        self._connected = connected
        self._since = datetime.now(UTC)

    # ------------------------------------------------------------------ mapping (hot path)

    def _deliver(self, messages: list[Message]) -> None:
        """Map messages just read into the open chunk (called by the link, on the loop)."""
        link = self._link
        assert link is not None
        chunk = self._open
        if chunk is None or chunk.link is not link:
            chunk = self._open = _Chunk(link)
        now = datetime.now(UTC)
        apply = self._rules.apply
        events = chunk.events
        accepted = chunk.messages
        for message in messages:
            try:
                topic = message.topic
                events.append(apply(topic, message.payload, now))
                accepted.append(message)
            except RejectedError as exc:
                self._reject(chunk, message, str(exc))
            except UnicodeDecodeError:
                self._reject(chunk, message, "topic is not valid UTF-8")
            except Exception as exc:
                self._unexpected += 1
                if self._unexpected == 1:
                    log.exception("mapping an MQTT message failed unexpectedly")
                self._reject(chunk, message, f"cannot map the message: {type(exc).__name__}: {exc}")
        self._received += len(messages)
        self._last_message_at = now
        self._wake.set()

    def _reject(self, chunk: _Chunk, message: Message, reason: str) -> None:
        chunk.rejects.append(self._reject_record(message, reason))
        chunk.rejected.append(message)

    @staticmethod
    def _reject_record(message: Message, reason: str) -> tuple[str, str, bytes]:
        """Where, why (printable: it may quote the payload) and the head of the payload."""
        try:
            where = message.topic
        except UnicodeDecodeError:
            where = "(topic not UTF-8)"
        reason = printable(reason)
        log.debug("rejected MQTT message: %s", reason)
        return where, reason, bytes(message.payload[:REJECT_PAYLOAD_BYTES])

    # ------------------------------------------------------------------------- committing

    async def _commit_loop(self) -> None:
        while True:
            chunk = self._open
            if chunk is None or not (chunk.messages or chunk.rejected):
                self._wake.clear()
                await self._wake.wait()
                continue
            self._open = None
            await self._commit(chunk)

    async def _commit(self, chunk: _Chunk) -> None:
        """Write a chunk's rejects and events, then acknowledge its messages."""
        link = chunk.link
        if not link.is_open:
            # Its connection is gone: the broker sends every one of these messages again.
            link.release(len(chunk.messages) + len(chunk.rejected))
            return
        if chunk.rejects:
            await asyncio.gather(
                *(
                    self._queue.record_reject("mqtt", where, reason, payload)
                    for where, reason, payload in chunk.rejects
                )
            )
            self._rejected += len(chunk.rejects)
            self._last_reject = chunk.rejects[-1][1]
            for where, reason, _ in chunk.rejects:
                self._reject_log.note(f"topic {where}", reason)
            link.ack(chunk.rejected)
        if not chunk.messages:
            return
        results = await self._enqueue(chunk)
        if results is None:
            link.release(len(chunk.messages))  # the broker sends them again
            return
        rejected = [
            (message, result.rejected)
            for message, result in zip(chunk.messages, results, strict=True)
            if result.rejected is not None
        ]
        for message, why in rejected:
            where, reason, payload = self._reject_record(message, f"topic {message.topic}: {why}")
            await self._queue.record_reject("mqtt", where, reason, payload)
            self._rejected += 1
            self._last_reject = reason
        for result in results:
            if result.duplicate:
                self._duplicates += 1
            elif result.shed:
                self._shed += 1
            elif result.seq is not None:
                self._queued += 1
        link.ack(chunk.messages)

    async def _enqueue(self, chunk: _Chunk) -> list[EnqueueResult] | None:
        """Queue a chunk's events; ``None`` when its connection was lost before any commit.

        An event that cannot be stored comes back rejected. Should the queue refuse the whole
        call anyway (something in it failed the commit), the events are queued one by one, so
        only the one at fault is refused.
        """
        link, events = chunk.link, chunk.events
        results: list[EnqueueResult] = []
        one_by_one = False
        retry = _RETRY_MIN_SECONDS
        while len(results) < len(events):
            rest = events[len(results) :]
            try:
                results += await self._queue.enqueue(
                    rest[:1] if one_by_one else rest, isolate_rejects=True
                )
                continue
            except RejectedError as exc:
                if one_by_one or len(rest) == 1:
                    results.append(EnqueueResult(seq=None, rejected=str(exc)))
                else:
                    log.warning("the queue refused a chunk of MQTT events (%s): one by one", exc)
                    one_by_one = True
                continue
            except QueueFullError as exc:
                self._last_error = printable(str(exc))
                await self._wait_for_room(link)
            except TransientError as exc:
                self._last_error = printable(str(exc))
                log.warning("queue refused MQTT events for now (%s); retrying", exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, _RETRY_MAX_SECONDS)
            if not link.is_open and not results:
                return None
        return results

    async def _wait_for_room(self, link: MqttLink) -> None:
        """Stop reading until the queue has room; hand the session back if that takes long."""
        self._paused = True
        link.pause_reading()
        hold = self._cfg.keepalive_seconds / 2
        try:
            try:
                async with asyncio.timeout(hold):
                    await self._queue.wait_until_writable()
            except TimeoutError:
                if link.is_open:
                    log.warning(
                        "queue full for %.0f s: disconnecting from the MQTT broker, which keeps "
                        "the session and the unacknowledged messages, until the queue has room",
                        hold,
                    )
                    link.close("queue full")
                await self._queue.wait_until_writable()
        finally:
            self._paused = False
            link.resume_reading()

    # ---------------------------------------------------------------------------- stats

    def stats(self) -> MqttStats:
        link = self._link
        return MqttStats(
            connected=self._connected,
            since=self._since,
            last_message_at=self._last_message_at,
            received=self._received,
            queued=self._queued,
            duplicates=self._duplicates,
            rejected=self._rejected,
            last_reject=self._last_reject,
            paused=self._paused,
            reconnects=self._reconnects,
            last_error=self._last_error,
            unacked=link.held if link is not None and link.is_open else 0,
            shed=self._shed,
            broker=f"{self._cfg.host}:{self._cfg.port}",
            duplicate_client=self._takeover.suspect,
            rejected_recently=self._reject_log.recent(),
            last_reject_at=self._reject_log.last_at,
        )
