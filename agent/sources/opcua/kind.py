"""The OPC UA source kind, for the registry (asyncua is imported only to check or build)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.sources.opcua.config import OpcuaConfig
from agent.sources.registry import Source, SourceKind

if TYPE_CHECKING:
    from agent.queue.store import QueueStore


def _disabled(config: OpcuaConfig) -> str | None:
    if config.endpoint:
        return None
    if config.nodes:
        return f"{len(config.nodes)} [[opcua.nodes]] configured but no [opcua] endpoint"
    return "[opcua] has no endpoint"


def _check(config: OpcuaConfig) -> None:
    # Node ids, certificate files and rule fields, before a first connection.
    from agent.sources.opcua.connection import check_config
    from agent.sources.opcua.rules import RuleEngine

    check_config(config)
    RuleEngine(config)


def _build(config: OpcuaConfig, queue: QueueStore, gateway_id: str) -> Source:
    # Imported only when used: asyncua alone costs ~30 MB of a small gateway's memory.
    from agent.sources.opcua.source import OpcuaSource

    return OpcuaSource(config, queue)


KIND = SourceKind(
    name="opcua",
    title="OPC UA endpoint",
    disabled=_disabled,
    check=_check,
    build=_build,
    address_field="endpoint",
    counter_fields=frozenset({"notifications", "events_queued", "overflows", "unmatched"}),
)
