"""The relay's Prometheus metrics, in a registry of its own, and the matching ``stats()``."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

#: Why a batch was refused; one label value each.
REFUSAL_REASONS = (
    "body_too_large",
    "decoded_too_large",
    "unsupported_encoding",
    "malformed_encoding",
    "bad_signature",
    "stale_signature",
    "unknown_key",
    "revoked_key",
    "invalid_batch",
    "wrong_gateway",
    "sequence_gap",
    "store_unavailable",
    "client_disconnected",
)

_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass(frozen=True, slots=True)
class RelayStats:
    """What this replica has accepted and refused since it started."""

    batches_accepted: int
    events_accepted: int
    events_stored: int
    batches_refused: int
    refused_by_reason: dict[str, int] = field(default_factory=dict)


class _StatsCollector(Collector):
    """A component's ``stats()`` dataclass, read at scrape time: integers become counters
    (gauges for the names in ``gauges``), a ``state`` string a one-hot gauge."""

    def __init__(
        self, prefix: str, what: str, stats: Callable[[], Any], gauges: frozenset[str] = frozenset()
    ) -> None:
        self._prefix = prefix
        self._what = what
        self._stats = stats
        self._gauges = gauges

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        if not dataclasses.is_dataclass(stats):
            return
        for item in dataclasses.fields(stats):
            value = getattr(stats, item.name)
            name = f"{self._prefix}_{item.name}"
            family: Metric
            if item.name == "state":
                family = GaugeMetricFamily(
                    name,
                    f"What the {self._what} is doing (1 for the current state).",
                    labels=["state"],
                )
                family.add_metric([str(value)], 1)
                yield family
            elif isinstance(value, int) and not isinstance(value, bool):
                if item.name in self._gauges:
                    family = GaugeMetricFamily(name, f"{self._what}: {item.name}.")
                else:
                    family = CounterMetricFamily(name, f"{self._what}: {item.name} since start.")
                family.add_metric([], value)
                yield family


class RelayMetrics:
    """Counts batches and events by outcome, per-gateway ack points and store latency."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self._batches_accepted = Counter(
            "cloud_relay_batches_accepted", "Batches answered 200 (replays included).", registry=reg
        )
        self._events_accepted = Counter(
            "cloud_relay_events_accepted", "Events in batches answered 200.", registry=reg
        )
        self._events_stored = Counter(
            "cloud_relay_events_stored", "Events stored for the first time.", registry=reg
        )
        self._batches_refused = Counter(
            "cloud_relay_batches_refused", "Batches refused, by reason.", ["reason"], registry=reg
        )
        self._events_refused = Counter(
            "cloud_relay_events_refused",
            "Events in refused batches whose body could be read, by reason.",
            ["reason"],
            registry=reg,
        )
        self._acked_seq = Gauge(
            "cloud_relay_gateway_acked_seq",
            "Highest contiguous seq stored for the gateway.",
            ["gateway_id"],
            registry=reg,
        )
        self._last_seq = Gauge(
            "cloud_relay_gateway_last_seq",
            "Highest seq a verified batch of the gateway carried.",
            ["gateway_id"],
            registry=reg,
        )
        self._lag = Gauge(
            "cloud_relay_gateway_lag_events",
            "Events seen but not stored: last_seq seen minus acked_seq.",
            ["gateway_id"],
            registry=reg,
        )
        self._store_seconds = Histogram(
            "cloud_relay_store_seconds",
            "Latency of inbox operations.",
            ["operation"],
            buckets=_STORE_BUCKETS,
            registry=reg,
        )
        for reason in REFUSAL_REASONS:
            self._batches_refused.labels(reason)
            self._events_refused.labels(reason)
        self._lock = threading.Lock()
        self._counts = {"batches_accepted": 0, "events_accepted": 0, "events_stored": 0}
        self._refused: dict[str, int] = dict.fromkeys(REFUSAL_REASONS, 0)
        self._seen: dict[str, tuple[int, int]] = {}
        self._inbox_watched = False
        self._writer_watched = False

    def watch_inbox(self, stats: Callable[[], Any]) -> None:
        """Expose the inbox's ``stats()`` counters too (once per registry)."""
        if not self._inbox_watched:
            self.registry.register(_StatsCollector("cloud_relay_inbox", "Inbox", stats))
            self._inbox_watched = True

    def watch_writer(self, stats: Callable[[], Any]) -> None:
        """Expose the Odoo writer's ``stats()`` too (once per registry)."""
        if not self._writer_watched:
            self.registry.register(
                _StatsCollector(
                    "cloud_relay_writer",
                    "Odoo writer",
                    stats,
                    frozenset({"pending", "dead_letters", "parked_orders"}),
                )
            )
            self._writer_watched = True

    def accepted(
        self, gateway_id: str, last_seq: int, events: int, stored: int, acked: int
    ) -> None:
        """Count a batch answered 200."""
        self._batches_accepted.inc()
        self._events_accepted.inc(events)
        self._events_stored.inc(stored)
        with self._lock:
            self._counts["batches_accepted"] += 1
            self._counts["events_accepted"] += events
            self._counts["events_stored"] += stored
        self.observe_gateway(gateway_id, last_seq=last_seq, acked_seq=acked)

    def refused(self, reason: str, events: int = 0) -> None:
        """Count a refused batch; ``events`` when its body was parsed far enough to know."""
        self._batches_refused.labels(reason).inc()
        if events:
            self._events_refused.labels(reason).inc(events)
        with self._lock:
            self._refused[reason] = self._refused.get(reason, 0) + 1

    def observe_gateway(
        self, gateway_id: str, *, last_seq: int | None = None, acked_seq: int | None = None
    ) -> None:
        """Update a verified gateway's ack point and highest seq seen."""
        with self._lock:
            seen_last, seen_acked = self._seen.get(gateway_id, (0, 0))
            seen_last = max(seen_last, last_seq or 0)
            seen_acked = max(seen_acked, acked_seq or 0)
            self._seen[gateway_id] = (seen_last, seen_acked)
        self._last_seq.labels(gateway_id).set(seen_last)
        self._acked_seq.labels(gateway_id).set(seen_acked)
        self._lag.labels(gateway_id).set(max(0, seen_last - seen_acked))

    @contextmanager
    def timing(self, operation: str) -> Iterator[None]:
        """Time one inbox operation into the latency histogram (failures included)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._store_seconds.labels(operation).observe(time.perf_counter() - started)

    def stats(self) -> RelayStats:
        """A snapshot of the counts."""
        with self._lock:
            refused = dict(self._refused)
            return RelayStats(
                batches_accepted=self._counts["batches_accepted"],
                events_accepted=self._counts["events_accepted"],
                events_stored=self._counts["events_stored"],
                batches_refused=sum(refused.values()),
                refused_by_reason=refused,
            )
