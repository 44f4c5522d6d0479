"""Prometheus exposition of the components' ``stats()``: read at scrape time, nothing kept twice."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from agent.sources import registry

#: Fields that only ever grow; exposed as counters (``…_total``).
COUNTER_FIELDS = frozenset(
    {
        "rejected",
        "shed",
        "duplicates",
        "enqueued_total",
        "commits_total",
        "received",
        "queued",
        "reconnects",
        "notifications",
        "events_queued",
        "overflows",
        "batches_sent",
        "events_sent",
        "bytes_sent",
        "retries",
        "restarts",
    }
)


class StatsCollector(Collector):
    """Turns every numeric, boolean and timestamp field of each component's stats into a metric."""

    def __init__(self, providers: Mapping[str, Callable[[], Any]]) -> None:
        self._providers = providers

    def collect(self) -> Iterator[Metric]:
        counters = COUNTER_FIELDS | registry.counter_fields()
        for component, provider in self._providers.items():
            stats = provider()
            if not dataclasses.is_dataclass(stats):
                continue
            for field in dataclasses.fields(stats):
                value = _number(getattr(stats, field.name))
                if value is None:
                    continue
                base = f"edge_agent_{component}_{field.name}"
                if field.name in counters:
                    name = base.removesuffix("_total")
                    counter = CounterMetricFamily(name, f"{component} {field.name}")
                    counter.add_metric([], value)
                    yield counter
                else:
                    gauge = GaugeMetricFamily(base, f"{component} {field.name}")
                    gauge.add_metric([], value)
                    yield gauge


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    return None


def build_registry(providers: Mapping[str, Callable[[], Any]]) -> CollectorRegistry:
    """A registry holding only this agent's metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatsCollector(providers))
    return registry
