"""Options of the MQTT source (``[mqtt]`` and ``[[mqtt.subscriptions]]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from agent.sources.pointer import JsonPointer
from wire.events import DATA_MODELS


def _check_pointer(value: str) -> str:
    JsonPointer(value)  # raises PointerSyntaxError (a ValueError) naming what is wrong
    return value


#: A JSON Pointer option, checked where it stands, so an error names the data field it is for.
PointerText = Annotated[str, AfterValidator(_check_pointer)]


class MqttTls(BaseModel):
    """TLS to the broker. Any of these set turns TLS on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ca_file: Path | None = None
    """CA bundle that signed the broker's certificate; the system store when unset."""
    cert_file: Path | None = None
    """Client certificate for mutual TLS."""
    key_file: Path | None = None
    """Private key of the client certificate."""
    insecure_skip_verify: bool = False
    """Accept any broker certificate (testing only)."""


class MqttSubscription(BaseModel):
    """One topic filter and the rule that turns its JSON payloads into events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1)
    """MQTT topic filter, wildcards allowed."""
    qos: Literal[0, 1, 2] = 1
    """Subscription QoS; 1 or 2 for anything that must not be lost."""
    event: str
    """Event type produced, e.g. ``production.reported``."""
    fields: dict[str, PointerText] = Field(default_factory=dict)
    """Event data field -> JSON Pointer into the payload."""
    static: dict[str, Any] = Field(default_factory=dict)
    """Event data field -> fixed value (e.g. ``uom = "Units"``)."""
    topic_fields: dict[str, int] = Field(default_factory=dict)
    """Event data field -> index of the topic level that carries it (0-based)."""
    occurred_at: str | None = None
    """JSON Pointer to an RFC 3339 timestamp in the payload; the receive time when unset."""
    dedupe_key: str | None = None
    """JSON Pointer to a message id: a redelivery with the same key is not a second event."""

    @field_validator("event")
    @classmethod
    def _known_event(cls, value: str) -> str:
        if value not in DATA_MODELS:
            raise ValueError(f"unknown event type {value!r}; one of {sorted(DATA_MODELS)}")
        return value

    @field_validator("occurred_at", "dedupe_key")
    @classmethod
    def _pointer(cls, value: str | None) -> str | None:
        return None if value is None else _check_pointer(value)

    @model_validator(mode="after")
    def _some_mapping(self) -> MqttSubscription:
        if not (self.fields or self.static or self.topic_fields):
            raise ValueError("a subscription needs 'fields', 'static' or 'topic_fields'")
        seen: dict[str, str] = {}
        for where in ("fields", "static", "topic_fields"):
            for name in getattr(self, where):
                if name in seen:
                    raise ValueError(
                        f"data field {name!r} is set in both {seen[name]!r} and {where!r}"
                    )
                seen[name] = where
        return self


class MqttConfig(BaseModel):
    """The plant broker and what to read from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    """Broker host name or address."""
    port: int = Field(default=1883, ge=1, le=65535)
    """Broker port (8883 is usual for TLS)."""
    client_id: str | None = None
    """MQTT client id; ``edge-agent-<gateway.id>`` when unset. Must be stable: the broker keeps
    the persistent session under it."""
    protocol: Literal["3.1.1", "5"] = "3.1.1"
    """MQTT protocol version. 3.1.1 costs about two thirds of 5 per message in the client; 5 lets
    the broker hold its inflight window to ``max_unacked_messages`` (Receive Maximum)."""
    keepalive_seconds: int = Field(default=30, ge=5, le=3600)
    """Keep-alive interval."""
    session_expiry_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    """How long the broker keeps the session (and queued messages) while the agent is away
    (MQTT 5; with 3.1.1 the session persists until cleaned)."""
    username: str | None = None
    """User name, when the broker requires one."""
    password_file: Path | None = None
    """File holding the password (a systemd credential, say); never put it in this file."""
    tls: MqttTls | None = None
    """TLS settings; plain TCP when absent."""
    max_unacked_messages: int = Field(default=1000, ge=1, le=65535)
    """Most messages held in memory without PUBACK; the agent stops reading past it."""
    reconnect_min_seconds: float = Field(default=0.5, gt=0)
    """First reconnect delay."""
    reconnect_max_seconds: float = Field(default=30.0, gt=0)
    """Cap on the (jittered, doubling) reconnect delay."""
    subscriptions: tuple[MqttSubscription, ...] = ()
    """Topic filters and their rules; the MQTT source runs only when there is at least one."""
