"""Options of the OPC UA source (``[opcua]`` and ``[[opcua.nodes]]``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.sources.signal_rules import check_rule_fields

COUNTER_EVENTS = ("production.reported", "material.consumed", "scrap.reported")


def _split_identifier(data: Any) -> Any:
    """Take ``nsu=<uri>;<id>`` apart; refuse ``ns=<index>;<id>``, whose index can move.

    UaExpert and the agent's own log show nodes as ``ns=2;s=GoodParts``; the index there is
    only valid until the server restarts, so it must not override ``namespace_uri``.
    """
    if not isinstance(data, dict):
        return data
    identifier = data.get("identifier")
    if not isinstance(identifier, str):
        return data
    head, sep, rest = identifier.partition(";")
    if not sep:
        return data
    if head.startswith("ns="):
        raise ValueError(
            f"identifier {identifier!r} carries a namespace index ({head}), which can change "
            "when the server restarts; write the namespace by its URI instead: "
            f'namespace_uri = "<the URI of namespace {head[3:]}>" and identifier = "{rest}" '
            f'(or identifier = "nsu=<URI>;{rest}")'
        )
    if head.startswith("nsu="):
        uri = head[4:]
        given = data.get("namespace_uri")
        if given is not None and given != uri:
            raise ValueError(
                f"identifier {identifier!r} names namespace {uri!r} but namespace_uri is {given!r}"
            )
        return {**data, "namespace_uri": uri, "identifier": rest}
    return data


class NodeRef(BaseModel):
    """A node addressed by namespace URI (stable across server restarts) and identifier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace_uri: str
    """Namespace URI, e.g. ``urn:plant:line1``; index 0 when it is the OPC UA namespace."""
    identifier: str
    """Identifier with its type prefix: ``i=1001``, ``s=Line1.GoodParts``, ``g=…``, ``b=…``
    (``nsu=<uri>;s=…`` sets namespace_uri too; ``ns=<index>;…`` is refused)."""

    @model_validator(mode="before")
    @classmethod
    def _identifier(cls, data: Any) -> Any:
        return _split_identifier(data)


class OrderSource(BaseModel):
    """Where the current manufacturing order comes from: a node or a fixed value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    node: NodeRef | None = None
    """A string node holding the current MO name."""
    value: str | None = None
    """A fixed MO name."""

    @model_validator(mode="after")
    def _exactly_one(self) -> OrderSource:
        if (self.node is None) == (self.value is None):
            raise ValueError("set exactly one of 'node' or 'value'")
        return self


class OpcuaNodeRule(BaseModel):
    """One subscribed node and the rule that turns its values into events."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Stable name of this rule; keys the persisted counter value and the event's source."""
    namespace_uri: str
    """Namespace URI of the node."""
    identifier: str
    """Identifier with its type prefix (``s=Line1.GoodParts``; ``nsu=<uri>;s=…`` also sets
    namespace_uri; ``ns=<index>;…`` is refused)."""
    rule: Literal["counter", "state", "sample"]
    """``counter``: cumulative count -> deltas; ``state``: value -> operation events;
    ``sample``: every value -> ``signal.sampled``."""
    event: Literal["production.reported", "material.consumed", "scrap.reported"] | None = None
    """For ``counter``: the event the deltas become."""
    product: str | None = None
    """For ``material.consumed`` and ``scrap.reported`` counters: the product's default_code."""
    uom: str | None = None
    """Unit of measure written into counter events."""
    rollover_max: int | None = Field(default=None, ge=1)
    """For ``counter``: the highest value before the PLC counter wraps to 0. Unset: the
    maximum of the node's unsigned integer type (UInt32: 4294967295), none for other types."""
    rollover_window: float = Field(default=0.1, gt=0, lt=1)
    """A drop from within this fraction of rollover_max is a rollover; any other drop a reset."""
    states: dict[str, Literal["operation.started", "operation.paused", "operation.finished"]] = (
        Field(default_factory=dict)
    )
    """For ``state``: node value (as text: ``true``, ``2``, ``RUNNING``) -> event type."""
    operation: str | None = None
    """For ``state``: operation name written into the events."""
    workcenter: str | None = None
    """For ``state`` (and production counters): work center name."""
    unit: str | None = None
    """For ``sample``: unit of the value."""
    static: dict[str, Any] = Field(default_factory=dict)
    """Extra fixed event data fields (``lot``, ``reason`` …)."""

    @model_validator(mode="before")
    @classmethod
    def _identifier(cls, data: Any) -> Any:
        return _split_identifier(data)

    @model_validator(mode="after")
    def _rule_fields(self) -> OpcuaNodeRule:
        check_rule_fields(self)
        return self


class OpcuaConfig(BaseModel):
    """The OPC UA server of a machine or line, and the nodes to watch."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = None
    """``opc.tcp://host:4840/…``; the OPC UA source runs only when set."""
    security_policy: Literal[
        "None", "Basic256Sha256", "Aes128Sha256RsaOaep", "Aes256Sha256RsaPss"
    ] = "None"
    """Security policy."""
    security_mode: Literal["None", "Sign", "SignAndEncrypt"] = "None"
    """Message security mode."""
    certificate_file: Path | None = None
    """Client application certificate (DER or PEM), required with a security policy."""
    private_key_file: Path | None = None
    """Private key of the client certificate."""
    server_certificate_file: Path | None = None
    """The server's certificate, to trust it explicitly."""
    username: str | None = None
    """User name for user-token authentication."""
    password_file: Path | None = None
    """File holding the password."""
    publishing_interval_ms: int = Field(default=100, ge=10)
    """Subscription publishing interval."""
    queue_size: int = Field(default=10_000, ge=100)
    """Notifications buffered between the client and the rules; overflow is counted, not silent."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    """Request timeout."""
    reconnect_min_seconds: float = Field(default=0.5, gt=0)
    """First reconnect delay."""
    reconnect_max_seconds: float = Field(default=5.0, gt=0)
    """Cap on the (jittered, doubling) reconnect delay: a PLC back from a restart is read again
    within this, before a counter reset to zero can climb back past the last value read."""
    watchdog_interval_seconds: float = Field(default=1.0, gt=0)
    """How often a quiet connection is probed; a dead server is noticed within about twice this."""
    session_timeout_seconds: float = Field(default=60.0, ge=10)
    """Session lifetime the server keeps after losing the agent (frees PLC session slots)."""
    application_uri: str = "urn:plant-link:edge-agent"
    """This client's application URI; must match the URI in the client certificate."""
    order: OrderSource | None = None
    """Current manufacturing order for the events of this server."""
    nodes: tuple[OpcuaNodeRule, ...] = ()
    """Nodes and their rules."""

    @model_validator(mode="after")
    def _security(self) -> OpcuaConfig:
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError("security_policy and security_mode must both be 'None' or neither")
        if self.security_policy != "None" and (
            self.certificate_file is None or self.private_key_file is None
        ):
            raise ValueError("a security policy needs certificate_file and private_key_file")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs username")
        return self

    @model_validator(mode="after")
    def _needs_order(self) -> OpcuaConfig:
        if self.endpoint and any(n.rule != "sample" for n in self.nodes) and self.order is None:
            raise ValueError("counter and state rules need [opcua.order] (node or value)")
        needed = 2 * (len(self.nodes) + 1)
        if self.queue_size < needed:
            raise ValueError(
                f"queue_size must be at least {needed} (twice the subscribed nodes), so that the "
                "values every (re)subscription repeats fit in the buffer"
            )
        names = [n.name for n in self.nodes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"node rule names must be unique; repeated: {dupes}")
        return self
