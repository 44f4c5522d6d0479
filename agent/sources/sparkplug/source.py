"""The Sparkplug B source: a host application on ``spBv1.0/<group>/#`` that queues what its rules
make, acknowledging each message only after its events are committed.

Messages are read through the plain MQTT source's link (manual PUBACK, bounded in-flight).
The reader only collects them; one committer decodes a batch, applies births, sequence checks
and rules to it, enqueues the events together with the rules' memory in one transaction and
then acknowledges the batch. A batch whose connection is gone before its commit is dropped
unapplied, and the broker sends it again. Counter values are cumulative, so a message lost on
the way (Sparkplug DATA is usually QoS 0) costs no count: the next value, or the births that a
Rebirth request brings, carry it.

As primary host application (``host_id``) the agent publishes ``spBv1.0/STATE/<host_id>``
``{"online": true}`` retained after subscribing, with the matching ``online: false`` as its
MQTT will, so edge nodes store and forward while it is away.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.errors import QueueFullError, RejectedError, TransientError
from agent.queue.store import QueueStore
from agent.sources.mqtt.credentials import read_password, tls_context
from agent.sources.mqtt.link import LinkOptions, Message, MqttLink
from agent.sources.rejects import RejectLog
from agent.sources.sparkplug.config import SparkplugConfig
from agent.sources.sparkplug.nodes import NodeBook
from agent.sources.sparkplug.payload import (
    NAMESPACE,
    decode,
    parse_topic,
    rebirth_request,
    says_offline,
    state_certificate,
    state_topic,
)
from agent.sources.sparkplug.rules import MetricRules, Plan, Rejected
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

_RETRY_MIN_SECONDS = 0.05
_RETRY_MAX_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SparkplugStats:
    """A snapshot of the Sparkplug B source for the health page and ``/metrics``."""

    connected: bool
    since: datetime | None
    broker: str
    last_message_at: datetime | None
    received: int
    events_queued: int
    rejected: int
    last_reject: str | None
    reconnects: int
    last_error: str | None
    nodes_online: int
    offline: tuple[str, ...]
    """Edge nodes and devices whose death certificate came after their birth."""
    warning: str | None
    """Offline edge nodes, in words (amber on the health page)."""
    rebirths_requested: int
    seq_gaps: int
    unborn_data: int
    """DATA messages before their node's or device's BIRTH."""
    bdseq_mismatches: int
    stale_values: int
    """Values older than one already taken for their rule (historical replays): skipped."""
    last_rebirth_reason: str | None
    current_order: str | None
    primary_host: str | None
    rejected_recently: int = 0
    """Payloads rejected in the last few minutes (:data:`agent.sources.rejects.RECENT_SECONDS`)."""
    last_reject_at: datetime | None = None


@dataclass(slots=True)
class _Chunk:
    link: MqttLink
    messages: list[Message] = field(default_factory=list)


class SparkplugSource:
    """Reads one Sparkplug B group and queues the events of its configured metrics."""

    def __init__(self, config: SparkplugConfig, queue: QueueStore, client_id: str) -> None:
        self._cfg = config
        self._queue = queue
        self._group = config.group_id or ""
        self._nodes = NodeBook()
        self._rules = MetricRules(config)
        broker = config.broker
        self._password = read_password(broker)
        self._tls = tls_context(broker)
        self._client_id = client_id
        self._link: MqttLink | None = None
        self._open: _Chunk | None = None
        self._wake = asyncio.Event()
        self._birth_ms = 0
        self._rebirth_sent: dict[str, float] = {}
        self._connected = False
        self._since: datetime | None = None
        self._last_message_at: datetime | None = None
        self._received = 0
        self._queued = 0
        self._rejected = 0
        self._last_reject: str | None = None
        self._reconnects = 0
        self._last_error: str | None = None
        self._rebirths = 0
        self._gaps = 0
        self._unborn = 0
        self._bdseq = 0
        self._stale = 0
        self._last_rebirth_reason: str | None = None
        self._reject_log = RejectLog("Sparkplug B", log)

    def stats(self) -> SparkplugStats:
        offline = tuple(self._nodes.offline())
        broker = self._cfg.broker
        return SparkplugStats(
            connected=self._connected,
            since=self._since,
            broker=f"{broker.host}:{broker.port}",
            last_message_at=self._last_message_at,
            received=self._received,
            events_queued=self._queued,
            rejected=self._rejected,
            last_reject=self._last_reject,
            reconnects=self._reconnects,
            last_error=self._last_error,
            nodes_online=self._nodes.online(),
            offline=offline,
            warning=f"edge nodes offline: {', '.join(offline)}" if offline else None,
            rebirths_requested=self._rebirths,
            seq_gaps=self._gaps,
            unborn_data=self._unborn,
            bdseq_mismatches=self._bdseq,
            stale_values=self._stale,
            last_rebirth_reason=self._last_rebirth_reason,
            current_order=self._rules.current_order,
            primary_host=self._cfg.host_id,
            rejected_recently=self._reject_log.recent(),
            last_reject_at=self._reject_log.last_at,
        )

    async def run(self) -> None:
        """Connect, read and queue until cancelled; reconnect with capped, jittered backoff."""
        keys = self._rules.state_keys()
        self._rules.load({key: await self._queue.get_state(key) for key in keys})
        committer = asyncio.create_task(self._commit_loop(), name="sparkplug-commit")
        connector = asyncio.create_task(self._connect_loop(), name="sparkplug-connect")
        try:
            done, _ = await asyncio.wait({committer, connector}, return_when="FIRST_COMPLETED")
            for task in done:
                task.result()
        finally:
            for task in (connector, committer):
                task.cancel()
            await asyncio.gather(connector, committer, return_exceptions=True)
            if self._link is not None:
                self._link.close()

    # -- the connection ----------------------------------------------------------------

    async def _connect_loop(self) -> None:
        broker = self._cfg.broker
        backoff = Backoff(broker.reconnect_min_seconds, broker.reconnect_max_seconds)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self._session()
            except TransientError as exc:
                self._last_error = str(exc)
                log.warning("Sparkplug broker %s:%d: %s", broker.host, broker.port, exc)
            if loop.time() - started >= broker.reconnect_max_seconds:
                backoff.reset()
            self._reconnects += 1
            await asyncio.sleep(backoff.next_delay())

    async def _session(self) -> None:
        cfg, broker = self._cfg, self._cfg.broker
        self._birth_ms = int(time.time() * 1000)
        will = None
        if cfg.host_id is not None:
            will = (state_topic(cfg.host_id), state_certificate(False, self._birth_ms), 1, True)
        options = LinkOptions(
            client_id=self._client_id,
            username=broker.username,
            password=self._password,
            tls=self._tls,
            tls_insecure=bool(broker.tls and broker.tls.insecure_skip_verify),
            will=will,
        )
        link = MqttLink(broker, options, self._deliver)
        self._link = link
        timeout = float(broker.keepalive_seconds)
        try:
            await link.connect(timeout_seconds=timeout)
            filters = [(f"{NAMESPACE}/{self._group}/#", 1)]
            if cfg.host_id is not None:
                filters.append((state_topic(cfg.host_id), 1))
            refused = await link.subscribe(filters, timeout)
            if refused:
                raise TransientError(f"subscriptions refused by the broker: {', '.join(refused)}")
            self._publish_state(link)
            self._connected, self._since = True, datetime.now(UTC)
            log.info(
                "Sparkplug B: reading group %s on %s:%d", self._group, broker.host, broker.port
            )
            why = await link.wait_closed()
            self._last_error = f"disconnected: {why}"
            log.warning("Sparkplug B broker %s:%d: disconnected: %s", broker.host, broker.port, why)
        finally:
            if cfg.host_id is not None and link.is_open:
                # Leaving on purpose: say so, as the will would say for a crash.
                death = state_certificate(False, self._birth_ms)
                link.publish(state_topic(cfg.host_id), death, qos=1, retain=True)
            link.close()
            if self._open is not None and self._open.link is link:
                self._open = None  # not applied, not acknowledged: the broker sends them again
            if self._connected:
                self._connected, self._since = False, datetime.now(UTC)

    def _publish_state(self, link: MqttLink) -> None:
        if self._cfg.host_id is not None:
            topic = state_topic(self._cfg.host_id)
            link.publish(topic, state_certificate(True, self._birth_ms), qos=1, retain=True)

    def _deliver(self, messages: list[Message]) -> None:
        link = self._link
        assert link is not None
        chunk = self._open
        if chunk is None or chunk.link is not link:
            chunk = self._open = _Chunk(link)
        chunk.messages.extend(messages)
        self._received += len(messages)
        self._last_message_at = datetime.now(UTC)
        self._wake.set()

    # -- applying and committing ---------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            chunk = self._open
            if chunk is None or not chunk.messages:
                self._wake.clear()
                await self._wake.wait()
                continue
            self._open = None
            await self._commit(chunk)

    async def _commit(self, chunk: _Chunk) -> None:
        link = chunk.link
        if not link.is_open:
            link.release(len(chunk.messages))
            return
        now = datetime.now(UTC)
        plans: list[Plan] = []
        rejects: list[tuple[str, str, bytes]] = []
        for message in chunk.messages:
            try:
                plan = self._apply(link, message, now)
            except RejectedError as exc:
                rejects.append((_topic(message), str(exc), bytes(message.payload[:1024])))
                continue
            if plan is not None:
                plans.append(plan)
                self._rules.commit(plan)  # later messages of the batch build on it
        if rejects:
            for where, reason, payload in rejects:
                await self._queue.record_reject("sparkplug", where, reason, payload)
                self._reject_log.note(where, reason)
            self._rejected += len(rejects)
            self._last_reject = f"{rejects[-1][0]}: {rejects[-1][1]}"
        await self._store(chunk, plans)

    async def _store(self, chunk: _Chunk, plans: list[Plan]) -> None:
        link = chunk.link
        events = [e for p in plans for e in p.events]
        state: dict[str, str] = {}
        for plan in plans:
            state.update(plan.state)
        rejects = [r for p in plans for r in p.rejects]
        for reject in rejects:
            await self._record(reject)
        retry = _RETRY_MIN_SECONDS
        while events or state:
            try:
                results = await self._queue.enqueue(events, state)
                self._queued += sum(1 for r in results if r.seq is not None)
                break
            except QueueFullError as exc:
                self._last_error = str(exc)
                link.pause_reading()
                try:
                    await self._queue.wait_until_writable()
                finally:
                    link.resume_reading()
            except TransientError as exc:
                self._last_error = str(exc)
                await asyncio.sleep(retry)
                retry = min(retry * 2, _RETRY_MAX_SECONDS)
        link.ack(chunk.messages)

    async def _record(self, reject: Rejected) -> None:
        await self._queue.record_reject("sparkplug", reject.where, reject.reason, reject.payload)
        self._reject_log.note(reject.where, reject.reason)
        self._rejected += 1
        self._last_reject = f"{reject.where}: {reject.reason}"

    def _apply(self, link: MqttLink, message: Message, now: datetime) -> Plan | None:
        topic_text = _topic(message)
        topic = parse_topic(topic_text)
        if topic is None:
            own = self._cfg.host_id is not None and topic_text == state_topic(self._cfg.host_id)
            if own and says_offline(bytes(message.payload)):
                self._publish_state(link)  # a stale death of ours must not stand
            return None
        if topic.kind in ("NCMD", "DCMD"):
            return None
        outcome = self._nodes.apply(topic, decode(bytes(message.payload)))
        if outcome.rebirth is not None:
            self._count_problem(outcome.rebirth)
            self._request_rebirth(link, topic.node, outcome.rebirth)
        values = [v for v in outcome.values if self._rules.wanted(topic.node, v)]
        if not values:
            return None
        plan = self._rules.plan(topic.node, values, now)
        self._stale += plan.stale
        return plan

    def _count_problem(self, problem: str) -> None:
        if problem.startswith("seq gap"):
            self._gaps += 1
        elif "bdSeq" in problem:
            self._bdseq += 1
        elif "before" in problem:
            self._unborn += 1
        self._last_rebirth_reason = problem

    def _request_rebirth(self, link: MqttLink, node: str, why: str) -> None:
        now = time.monotonic()
        last = self._rebirth_sent.get(node)
        if last is not None and now - last < self._cfg.rebirth_interval_seconds:
            return
        self._rebirth_sent[node] = now
        self._rebirths += 1
        log.info("Sparkplug B: asking %s/%s for a rebirth: %s", self._group, node, why)
        topic = f"{NAMESPACE}/{self._group}/NCMD/{node}"
        link.publish(topic, rebirth_request(int(time.time() * 1000)), qos=0)


def _topic(message: Message) -> str:
    try:
        return message.topic
    except UnicodeDecodeError:
        return "(topic not UTF-8)"
