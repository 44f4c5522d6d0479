"""What the signal rules (counter, state, sample) of OPC UA and Sparkplug B share: the fields
each kind of rule needs, the fixed part of a rule's event data (checked once at start), and the
production a counter holds while no order is known, as kept in the queue's state."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from agent.errors import ConfigError
from wire.errors import WireValidationError
from wire.events import validate_data

log = logging.getLogger(__name__)


class SignalRule(Protocol):
    """A configured rule as both sources' settings spell it."""

    @property
    def name(self) -> str: ...
    @property
    def rule(self) -> str: ...
    @property
    def event(self) -> str | None: ...
    @property
    def product(self) -> str | None: ...
    @property
    def uom(self) -> str | None: ...
    @property
    def states(self) -> Mapping[str, str]: ...
    @property
    def operation(self) -> str | None: ...
    @property
    def workcenter(self) -> str | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def static(self) -> Mapping[str, Any]: ...


def check_rule_fields(rule: SignalRule) -> None:
    """Raise ValueError (a settings error naming the rule) for fields a rule kind needs."""
    if rule.rule == "counter":
        if rule.event is None:
            raise ValueError("a counter rule needs 'event'")
        if rule.event != "production.reported" and not rule.product:
            raise ValueError(f"a {rule.event} counter needs 'product'")
    if rule.rule == "state":
        if not rule.states:
            raise ValueError("a state rule needs 'states' (value -> operation event)")
        if rule.operation is None and rule.workcenter is None:
            raise ValueError("a state rule needs 'operation' or 'workcenter'")


def base_data(rule: SignalRule, section: str) -> dict[str, Any]:
    """The fixed part of a rule's event data, checked once so that events cannot fail later;
    a ConfigError names ``section`` (``[[opcua.nodes]]``) and the rule."""
    base: dict[str, Any]
    if rule.rule == "counter":
        assert rule.event is not None
        base = {"uom": rule.uom}
        if rule.event == "production.reported":
            base["workcenter"] = rule.workcenter
        else:
            base["product"] = rule.product
        probe, types = {"order": "MO", "qty": 1}, [str(rule.event)]
    elif rule.rule == "state":
        base = {"operation": rule.operation, "workcenter": rule.workcenter}
        probe, types = {"order": "MO"}, sorted({str(t) for t in rule.states.values()})
    else:
        base = {"unit": rule.unit}
        probe, types = {"name": rule.name, "value": 0.0}, ["signal.sampled"]
    base = {k: v for k, v in base.items() if v is not None} | dict(rule.static)
    for event_type in types:
        try:
            validate_data(event_type, {**base, **probe})
        except WireValidationError as exc:
            raise ConfigError(f"{section} {rule.name!r}: {event_type} {exc}") from exc
    return base


def parse_held(text: str | None) -> tuple[int, datetime] | None:
    """Production held for the next order, as stored: ``{"qty": n, "at": ISO time}``."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        qty, at = int(raw["qty"]), datetime.fromisoformat(raw["at"])
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable held production %r", text)
        return None
    return (qty, at) if qty > 0 else None
