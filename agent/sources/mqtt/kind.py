"""The MQTT source kind, for the registry (paho is imported only to build)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.errors import ConfigError
from agent.sources.mqtt.config import MqttConfig
from agent.sources.registry import Source, SourceKind

if TYPE_CHECKING:
    from agent.queue.store import QueueStore


def _disabled(config: MqttConfig) -> str | None:
    if config.subscriptions:
        return None
    return f"[mqtt] names broker {config.host}:{config.port} but has no [[mqtt.subscriptions]]"


def _check(config: MqttConfig) -> None:
    if config.password_file is not None and not config.password_file.is_file():
        raise ConfigError(f"[mqtt] password_file: {config.password_file} is not a file")


def _build(config: MqttConfig, queue: QueueStore, gateway_id: str) -> Source:
    from agent.sources.mqtt.source import MqttSource

    return MqttSource(config, queue, config.client_id or f"edge-agent-{gateway_id}")


KIND = SourceKind(
    name="mqtt",
    title="MQTT broker",
    disabled=_disabled,
    check=_check,
    build=_build,
    address_field="broker",
    counter_fields=frozenset({"received", "queued", "duplicates", "reconnects", "shed"}),
)
