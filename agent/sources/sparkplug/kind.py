"""The Sparkplug B source kind, for the registry (paho and protobuf load only to build)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.sources.registry import Source, SourceKind
from agent.sources.sparkplug.config import SparkplugConfig

if TYPE_CHECKING:
    from agent.queue.store import QueueStore


def _disabled(config: SparkplugConfig) -> str | None:
    if config.group_id:
        return None
    if config.metrics:
        return f"{len(config.metrics)} [[sparkplug.metrics]] configured but no [sparkplug] group_id"
    return "[sparkplug] has no group_id"


def _check(config: SparkplugConfig) -> None:
    from agent.sources.sparkplug.rules import MetricRules

    password = config.broker.password_file
    if password is not None and not password.is_file():
        raise ConfigError(f"[sparkplug.broker] password_file: {password} is not a file")
    MetricRules(config)


def _build(config: SparkplugConfig, queue: QueueStore, gateway_id: str) -> Source:
    from agent.sources.sparkplug.source import SparkplugSource

    client_id = config.broker.client_id or f"edge-agent-{gateway_id}-spb"
    return SparkplugSource(config, queue, client_id)


KIND = SourceKind(
    name="sparkplug",
    title="Sparkplug B broker",
    disabled=_disabled,
    check=_check,
    build=_build,
    address_field="broker",
    counter_fields=frozenset(
        {
            "received",
            "events_queued",
            "reconnects",
            "rebirths_requested",
            "seq_gaps",
            "unborn_data",
            "bdseq_mismatches",
            "stale_values",
        }
    ),
)
