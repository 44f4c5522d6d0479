"""Options of the Sparkplug B source (``[sparkplug]`` and ``[[sparkplug.metrics]]``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.sources.mqtt.config import MqttConfig
from agent.sources.signal_rules import check_rule_fields

#: Characters Sparkplug forbids in group, edge node, device and host ids (topic levels).
_ID_PATTERN = r"^[^/+#]+$"


class SparkplugOrder(BaseModel):
    """Where the current manufacturing order comes from: a fixed value or a String metric."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: str | None = None
    """A fixed MO name."""
    node: str | None = Field(default=None, pattern=_ID_PATTERN)
    """Edge node id of the order metric."""
    device: str | None = Field(default=None, pattern=_ID_PATTERN)
    """Device id of the order metric; unset for a node metric."""
    metric: str | None = None
    """Name of the String metric holding the current MO name."""

    @model_validator(mode="after")
    def _one_source(self) -> SparkplugOrder:
        if (self.value is None) == (self.metric is None):
            raise ValueError("set exactly one of 'value' or 'metric' (with 'node')")
        if self.metric is not None and self.node is None:
            raise ValueError("an order metric needs 'node'")
        return self


class SparkplugMetricRule(BaseModel):
    """One metric of an edge node (or of one of its devices) and the rule for its values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    """Stable name of this rule; keys the persisted counter value (with the metric) and the
    event's source (``sparkplug:<name>``)."""
    node: str = Field(pattern=_ID_PATTERN)
    """Edge node id (the topic's ``<edge_node_id>``)."""
    device: str | None = Field(default=None, pattern=_ID_PATTERN)
    """Device id; unset for a metric of the edge node itself."""
    metric: str = Field(min_length=1)
    """Metric name as the birth certificate gives it (``Line1/GoodParts``)."""
    rule: Literal["counter", "state", "sample"]
    """As for OPC UA nodes: ``counter``, ``state`` or ``sample``."""
    event: Literal["production.reported", "material.consumed", "scrap.reported"] | None = None
    """For ``counter``: the event the deltas become."""
    product: str | None = None
    """For ``material.consumed`` and ``scrap.reported`` counters: the product's default_code."""
    uom: str | None = None
    """Unit of measure written into counter events."""
    rollover_max: int | None = Field(default=None, ge=1)
    """For ``counter``: the highest value before the counter wraps to 0. Unset: the maximum
    of the metric's unsigned integer type (UInt32: 4294967295), none for other types."""
    rollover_window: float = Field(default=0.1, gt=0, lt=1)
    """A drop from within this fraction of rollover_max is a rollover; any other drop a reset."""
    states: dict[str, Literal["operation.started", "operation.paused", "operation.finished"]] = (
        Field(default_factory=dict)
    )
    """For ``state``: metric value (as text: ``true``, ``2``, ``RUNNING``) -> event type."""
    operation: str | None = None
    """For ``state``: operation name written into the events."""
    workcenter: str | None = None
    """For ``state`` (and production counters): work center name."""
    unit: str | None = None
    """For ``sample``: unit of the value."""
    static: dict[str, Any] = Field(default_factory=dict)
    """Extra fixed event data fields (``lot``, ``reason`` …)."""

    @model_validator(mode="after")
    def _rule_fields(self) -> SparkplugMetricRule:
        check_rule_fields(self)
        return self


class SparkplugConfig(BaseModel):
    """An MQTT broker carrying Sparkplug B, the group to read and the metrics to map."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    group_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    """Sparkplug group id; the source subscribes to ``spBv1.0/<group_id>/#`` and runs only
    when this is set."""
    host_id: str | None = Field(default=None, pattern=_ID_PATTERN)
    """Primary host application id: when set, the agent publishes its STATE birth and death
    (``spBv1.0/STATE/<host_id>``, retained), so edge nodes configured with this id store and
    forward while it is away."""
    broker: MqttConfig = MqttConfig()
    """The broker connection, with the options of ``[mqtt]`` (host, port, tls, username…;
    its ``subscriptions`` are not used). ``client_id`` defaults to ``edge-agent-<gateway>-spb``."""
    rebirth_interval_seconds: float = Field(default=5.0, gt=0)
    """Least time between two Rebirth requests to the same edge node."""
    order: SparkplugOrder | None = None
    """Current manufacturing order for the events of this group."""
    metrics: tuple[SparkplugMetricRule, ...] = ()
    """Metrics and their rules."""

    @model_validator(mode="after")
    def _consistent(self) -> SparkplugConfig:
        if self.group_id and any(m.rule != "sample" for m in self.metrics) and not self.order:
            raise ValueError("counter and state rules need [sparkplug.order] (value or metric)")
        names = [m.name for m in self.metrics]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"metric rule names must be unique; repeated: {dupes}")
        if self.broker.subscriptions:
            raise ValueError("[sparkplug.broker] takes no subscriptions")
        return self
