"""The OPC UA source: keeps a subscription to the line's server and queues what its rules make.

The subscription handler only appends readings to a bounded buffer (``queue_size``); one
consumer drains it in batches, applies the rules and enqueues each batch's events together with
the rules' memory in one transaction, so that nothing is counted twice across restarts and
reconnects. A full buffer drops the newest reading, counts it, and asks for a fresh
subscription once the buffer has drained: the server then repeats every current value, which
the counter arithmetic absorbs, so only intermediate state changes can be missed, never a count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.errors import QueueFullError, TransientError
from agent.queue.store import QueueStore
from agent.sources.opcua import connection
from agent.sources.opcua.config import OpcuaConfig
from agent.sources.opcua.reading import ORDER_TARGET, Reading
from agent.sources.opcua.rules import Plan, RejectedValue, RuleEngine
from agent.sources.rejects import RejectLog
from runtime.backoff import Backoff

log = logging.getLogger(__name__)

#: Most readings applied and enqueued together.
BATCH_MAX_READINGS = 2000
_RESYNC = "resync after buffer overflow"
_RETRY_UNKNOWN = "looking again for the nodes the server did not know"
#: How long a session with unknown nodes runs before it reconnects to look for them again.
UNKNOWN_NODE_RETRY_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class OpcuaStats:
    """A snapshot of the OPC UA source for the health page and ``/metrics``."""

    connected: bool
    since: datetime | None
    endpoint: str | None
    last_value_at: datetime | None
    notifications: int
    events_queued: int
    overflows: int
    rejected: int
    last_reject: str | None
    reconnects: int
    last_error: str | None
    current_order: str | None
    resyncs: int
    buffered: int
    held_qty: int
    subscribed_nodes: int
    applied: int
    alarm: str | None = None
    """What makes configured rules count nothing on this server (unknown nodes, state keys
    that can never match the node's type); None when every rule works."""
    unmatched: int = 0
    """State values that matched no key of their rule's ``states``."""
    last_unmatched: str | None = None
    rejected_recently: int = 0
    """Values rejected in the last few minutes (:data:`agent.sources.rejects.RECENT_SECONDS`)."""
    last_reject_at: datetime | None = None


class OpcuaSource:
    """Reads the configured nodes of one OPC UA server and queues their events."""

    def __init__(self, config: OpcuaConfig, queue: QueueStore) -> None:
        connection.check_config(config)
        self._config = config
        self._queue = queue
        self._engine = RuleEngine(config)
        self._buffer: asyncio.Queue[Reading] = asyncio.Queue(config.queue_size)
        self._lost: connection.LossSignal | None = None
        self._resync_wanted = False
        self._connected = False
        self._since: datetime | None = None
        self._last_value_at: float | None = None
        self._notifications = 0
        self._events_queued = 0
        self._overflows = 0
        self._rejected = 0
        self._last_reject: str | None = None
        self._reject_log = RejectLog("OPC UA", log)
        self._reconnects = 0
        self._resyncs = 0
        self._sessions = 0
        self._last_error: str | None = None
        self._subscribed = 0
        self._applied = 0
        self._alarms: tuple[str, ...] = ()
        self._unmatched = 0
        self._last_unmatched: str | None = None

    def stats(self) -> OpcuaStats:
        """Counters since start; ``connected`` and ``since`` describe the current link."""
        last = self._last_value_at
        return OpcuaStats(
            connected=self._connected,
            since=self._since,
            endpoint=self._config.endpoint,
            last_value_at=datetime.fromtimestamp(last, UTC) if last is not None else None,
            notifications=self._notifications,
            events_queued=self._events_queued,
            overflows=self._overflows,
            rejected=self._rejected,
            last_reject=self._last_reject,
            reconnects=self._reconnects,
            last_error=self._last_error,
            current_order=self._engine.current_order,
            resyncs=self._resyncs,
            buffered=self._buffer.qsize(),
            held_qty=self._engine.held_qty,
            subscribed_nodes=self._subscribed,
            applied=self._applied,
            alarm="; ".join(self._alarms) or None,
            unmatched=self._unmatched,
            last_unmatched=self._last_unmatched,
            rejected_recently=self._reject_log.recent(),
            last_reject_at=self._reject_log.last_at,
        )

    async def run(self) -> None:
        """Until cancelled: connect, subscribe, queue events; reconnect after any loss."""
        keys = self._engine.state_keys()
        self._engine.load({key: await self._queue.get_state(key) for key in keys})
        self._buffer = asyncio.Queue(self._config.queue_size)
        self._resync_wanted = False
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume(), name="opcua-rules")
            tasks.create_task(self._connect_forever(), name="opcua-connection")

    # -- the connection --------------------------------------------------------------------

    async def _connect_forever(self) -> None:
        backoff = Backoff(self._config.reconnect_min_seconds, self._config.reconnect_max_seconds)
        reconnecting = False
        while True:
            try:
                reason = await self._session(backoff, reconnecting)
            except TransientError as exc:
                self._last_error = str(exc)
                reconnecting = self._sessions > 0
                delay = backoff.next_delay()
                log.warning("OPC UA: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            if reason == _RETRY_UNKNOWN:
                continue
            reconnecting = reason != _RESYNC
            if not reconnecting:
                self._resyncs += 1
                log.info("OPC UA: resubscribing to recover values dropped by a full buffer")
                continue
            self._last_error = reason
            delay = backoff.next_delay()
            log.warning("OPC UA connection lost (%s); reconnecting in %.1f s", reason, delay)
            await asyncio.sleep(delay)

    async def _session(self, backoff: Backoff, reconnecting: bool) -> str:
        """One connection from connect to loss; returns why it ended."""
        config = self._config
        client = await connection.connect(config)
        lost = connection.LossSignal()
        self._lost = lost
        try:
            routes, order_id = await connection.resolve(client, config)
            types = await connection.read_types(client, list(routes))
            if order_id is not None:
                self._offer(await connection.read_order(client, order_id))
            handler = connection.NotificationHandler(routes, self._offer, lost)
            subscribed = await connection.subscribe(client, config, routes, handler)
            missing = self._check_nodes(routes, types, subscribed)
            async with asyncio.TaskGroup() as tasks:
                watcher = tasks.create_task(connection.watch(client, lost))
                retry = tasks.create_task(self._retry_unknown(lost)) if missing else None
                self._on_connected(subscribed.nodes, reconnecting)
                backoff.reset()
                reason = await lost.wait()
                watcher.cancel()
                if retry is not None:
                    retry.cancel()
            return reason
        finally:
            self._lost = None
            self._connected = False
            self._since = datetime.now(UTC)
            await connection.close(client, config.timeout_seconds)

    def _check_nodes(
        self,
        routes: connection.Routes,
        types: connection.NodeTypes,
        subscribed: connection.Subscribed,
    ) -> bool:
        """Raise (or clear) the alarm of rules that cannot count here; True if nodes are unknown.

        A node the server does not know (``BadNodeIdUnknown`` after a restart that moved or
        dropped it) leaves its rule silent while the link looks fine, so it is an alarm, not a
        log line; the session looks for it again every :data:`UNKNOWN_NODE_RETRY_SECONDS`.
        """
        by_rule = {
            index: kind
            for nid, kind in types.types.items()
            for index in routes.get(nid, ())
            if index != ORDER_TARGET
        }
        refused = dict(item.split(": ", 1) for item in (*types.unknown, *subscribed.refused))
        alarms = [
            f"the server does not know node {nid} ({status}): its rule counts nothing; "
            "check namespace_uri and identifier"
            for nid, status in refused.items()
        ]
        alarms += [f"state rule {p}" for p in self._engine.adopt_types(by_rule)]
        self._alarms = tuple(alarms)
        for alarm in alarms:
            log.error("OPC UA: %s", alarm)
        return bool(refused)

    @staticmethod
    async def _retry_unknown(lost: connection.LossSignal) -> None:
        await asyncio.sleep(UNKNOWN_NODE_RETRY_SECONDS)
        lost.set(_RETRY_UNKNOWN)

    def _on_connected(self, nodes: int, reconnecting: bool) -> None:
        if reconnecting:
            self._reconnects += 1
        self._sessions += 1
        self._connected = True
        self._since = datetime.now(UTC)
        self._subscribed = nodes
        log.info("OPC UA connected to %s, %d nodes subscribed", self._config.endpoint, nodes)

    def _offer(self, reading: Reading) -> None:
        """Buffer a reading; called by the subscription handler, so it never waits."""
        self._notifications += 1
        self._last_value_at = time.time()
        try:
            self._buffer.put_nowait(reading)
        except asyncio.QueueFull:
            self._overflows += 1
            if not self._resync_wanted:
                self._resync_wanted = True
                log.warning(
                    "OPC UA buffer full (%d readings): dropping values until it drains, then "
                    "resubscribing",
                    self._config.queue_size,
                )

    # -- the rules -------------------------------------------------------------------------

    async def _consume(self) -> None:
        buffer = self._buffer
        while True:
            readings = [await buffer.get()]
            while len(readings) < BATCH_MAX_READINGS and not buffer.empty():
                readings.append(buffer.get_nowait())
            plan = self._engine.plan(readings)
            await self._store(plan)
            self._engine.commit(plan)
            self._applied += len(readings)
            if plan.unmatched:
                self._unmatched += len(plan.unmatched)
                self._last_unmatched = plan.unmatched[-1]
                log.debug("OPC UA state values unmatched: %s", "; ".join(plan.unmatched))
            for reject in plan.rejects:
                await self._reject(reject)
            if self._resync_wanted and buffer.empty():
                self._resync_wanted = False
                if self._lost is not None:
                    self._lost.set(_RESYNC)

    async def _store(self, plan: Plan) -> None:
        """Enqueue the plan's events with its state; wait out a full queue, retry a failure."""
        if not plan.events and not plan.state:
            return
        backoff = Backoff(self._config.reconnect_min_seconds, self._config.reconnect_max_seconds)
        while True:
            try:
                results = await self._queue.enqueue(plan.events, plan.state)
            except QueueFullError as exc:
                self._last_error = f"queue full: {exc}"
                level = logging.WARNING if backoff.attempt == 0 else logging.DEBUG
                log.log(level, "OPC UA: the queue is full; waiting for room before reading on")
                backoff.next_delay()
                await self._queue.wait_until_writable()
                continue
            except TransientError as exc:
                self._last_error = f"queue: {exc}"
                delay = backoff.next_delay()
                log.warning("OPC UA: enqueue failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                continue
            self._events_queued += sum(1 for r in results if r.seq is not None)
            return

    async def _reject(self, reject: RejectedValue) -> None:
        await self._queue.record_reject(reject.source, reject.where, reject.reason, reject.payload)
        self._rejected += 1
        self._last_reject = f"{reject.source} {reject.where}: {reject.reason}"
        self._reject_log.note(f"{reject.source} {reject.where}", reject.reason)
        log.debug("OPC UA value rejected: %s", self._last_reject)
