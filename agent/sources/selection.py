"""Which sources the settings run, and which are configured but do not run, with the reason.

A source that is half configured (OPC UA nodes without an endpoint, an MQTT broker without a
subscription) reads nothing; the agent says so at start and on the health page rather than
staying silent about it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.sources.mqtt.config import MqttConfig
from agent.sources.opcua.config import OpcuaConfig


@dataclass(frozen=True, slots=True)
class SourceSelection:
    """The sources that run, and for each configured one that does not, why."""

    running: tuple[str, ...]
    disabled: dict[str, str] = field(default_factory=dict)


def select_sources(mqtt: MqttConfig, opcua: OpcuaConfig) -> SourceSelection:
    """Sort the configured sources into running and disabled."""
    running: list[str] = []
    disabled: dict[str, str] = {}
    if mqtt.subscriptions:
        running.append("mqtt")
    elif mqtt.model_fields_set:
        disabled["mqtt"] = (
            f"[mqtt] names broker {mqtt.host}:{mqtt.port} but has no [[mqtt.subscriptions]]"
        )
    if opcua.endpoint:
        running.append("opcua")
    elif opcua.nodes:
        disabled["opcua"] = f"{len(opcua.nodes)} [[opcua.nodes]] configured but no [opcua] endpoint"
    elif opcua.model_fields_set:
        disabled["opcua"] = "[opcua] has no endpoint"
    return SourceSelection(tuple(running), disabled)
