"""The rules that turn Sparkplug B metric values into events, with the OPC UA counter arithmetic.

Like the OPC UA rules they never do I/O: :meth:`MetricRules.plan` returns the events, the state
to persist with them (in the same transaction) and the rejects; :meth:`MetricRules.commit`
adopts the plan's memory once the queue has made it durable.

Time order: each rule remembers the timestamp of the last value it took. A value stamped
earlier (a historical metric an edge node forwards after a newer birth or live value) is
skipped and counted as ``stale``: for a counter the newer cumulative value already holds what
was made until then, so taking the older one would count part of it twice. Within one message
values are taken in timestamp order.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.queue.model import NewEvent
from agent.sources.opcua.counter import delta
from agent.sources.opcua.reading import counter_value, state_text
from agent.sources.signal_rules import base_data, parse_held
from agent.sources.sparkplug.config import SparkplugConfig, SparkplugMetricRule
from agent.sources.sparkplug.nodes import Value
from agent.sources.sparkplug.payload import TYPE_NAMES, UNSIGNED_MAX
from wire.errors import WireValidationError
from wire.events import format_timestamp, validate_data

log = logging.getLogger(__name__)

_PAYLOAD_MAX = 1024


@dataclass(frozen=True, slots=True)
class Rejected:
    where: str
    reason: str
    payload: bytes


@dataclass(slots=True)
class _Memory:
    order: str | None = None
    counters: dict[str, tuple[int, int | None]] = field(default_factory=dict)
    """Rule -> (last value, its timestamp in ms)."""
    last_at: dict[str, int] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    held: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    """Counter rule -> production grown while no order was known, and when it last grew."""
    waiting: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    """State rule -> the latest mapped state seen while no order was known."""

    def copy(self) -> _Memory:
        return _Memory(
            self.order,
            dict(self.counters),
            dict(self.last_at),
            dict(self.states),
            dict(self.held),
            dict(self.waiting),
        )


@dataclass(slots=True)
class Plan:
    events: list[NewEvent]
    state: dict[str, str]
    rejects: list[Rejected]
    stale: int
    _memory: _Memory


def where(rule: SparkplugMetricRule, group: str) -> str:
    """The metric as a person finds it on the broker: ``group/node[/device]:metric``."""
    device = f"/{rule.device}" if rule.device else ""
    return f"{group}/{rule.node}{device}:{rule.metric}"


def counter_key(rule: SparkplugMetricRule, group: str) -> str:
    return f"sparkplug:counter:{rule.name}:{where(rule, group)}"


def state_key(rule: SparkplugMetricRule) -> str:
    return f"sparkplug:state:{rule.name}"


def held_key(rule: SparkplugMetricRule) -> str:
    """Production held until an order is known (as for OPC UA counters)."""
    return f"sparkplug:held:{rule.name}"


class MetricRules:
    """Applies the configured metric rules to resolved values of one group's edge nodes."""

    def __init__(self, config: SparkplugConfig) -> None:
        self._group = config.group_id or ""
        self._rules = config.metrics
        self._where = [where(r, self._group) for r in self._rules]
        self._base = [base_data(r, "[[sparkplug.metrics]]") for r in self._rules]
        self._routes: dict[tuple[str, str | None, str], list[int]] = {}
        for index, rule in enumerate(self._rules):
            self._routes.setdefault((rule.node, rule.device, rule.metric), []).append(index)
        order = config.order
        self._order_route = (
            (order.node, order.device, order.metric)
            if order is not None and order.metric is not None and order.node is not None
            else None
        )
        self._memory = _Memory(order=order.value if order is not None else None)

    @property
    def current_order(self) -> str | None:
        return self._memory.order

    def state_keys(self) -> list[str]:
        keys = []
        for rule in self._rules:
            if rule.rule == "counter":
                keys += [counter_key(rule, self._group), held_key(rule)]
            elif rule.rule == "state":
                keys.append(state_key(rule))
        return keys

    def load(self, state: Mapping[str, str | None]) -> None:
        memory = _Memory(order=self._memory.order)
        for rule in self._rules:
            if rule.rule == "counter":
                raw = state.get(counter_key(rule, self._group))
                if raw:
                    try:
                        saved = json.loads(raw)
                        memory.counters[rule.name] = (int(saved["value"]), saved.get("at"))
                        if isinstance(saved.get("at"), int):
                            memory.last_at[rule.name] = saved["at"]
                    except (ValueError, KeyError, TypeError):
                        log.warning("ignoring unreadable counter state %r", raw)
                held = parse_held(state.get(held_key(rule)))
                if held is not None:
                    memory.held[rule.name] = held
            elif rule.rule == "state":
                text = state.get(state_key(rule))
                if text:
                    memory.states[rule.name] = text
        self._memory = memory

    def wanted(self, node: str, value: Value) -> bool:
        """Whether any rule (or the order) reads this metric: unread metrics cost nothing."""
        key = (node, value.device, value.metric)
        return key in self._routes or key == self._order_route

    def plan(self, node: str, values: Iterable[Value], now: datetime) -> Plan:
        plan = Plan([], {}, [], 0, self._memory.copy())
        order_route = self._order_route

        def order_first(value: Value) -> tuple[int, int]:
            is_order = (node, value.device, value.metric) == order_route
            return (value.timestamp_ms or 0, 0 if is_order else 1)

        for value in sorted(values, key=order_first):
            key = (node, value.device, value.metric)
            if key == self._order_route:
                self._apply_order(plan, value)
            for index in self._routes.get(key, ()):
                self._apply(plan, index, value, now)
        return plan

    def commit(self, plan: Plan) -> None:
        self._memory = plan._memory

    # -- rules -------------------------------------------------------------------------

    def _apply_order(self, plan: Plan, value: Value) -> None:
        if not isinstance(value.value, str) or not value.value.strip():
            return
        memory, order = plan._memory, value.value.strip()
        if order == memory.order:
            return
        memory.order = order
        for index, rule in enumerate(self._rules):
            if rule.name in memory.held:
                qty, at = memory.held.pop(rule.name)
                plan.state[held_key(rule)] = ""
                assert rule.event is not None
                data = {**self._base[index], "order": order, "qty": qty}
                self._emit(plan, index, rule.event, data, at)
            if rule.name in memory.waiting:
                text, at = memory.waiting.pop(rule.name)
                self._emit_state(plan, index, text, at)

    def _apply(self, plan: Plan, index: int, value: Value, now: datetime) -> None:
        rule, memory = self._rules[index], plan._memory
        stamp = value.timestamp_ms
        last_at = memory.last_at.get(rule.name)
        if stamp is not None and last_at is not None and stamp < last_at:
            plan.stale += 1
            return
        if stamp is not None:
            memory.last_at[rule.name] = stamp
        at = datetime.fromtimestamp(stamp / 1000, UTC) if stamp is not None else now
        if value.value is None:
            self._reject(plan, index, f"no readable value (data type {value.datatype})", value)
        elif rule.rule == "counter":
            self._counter(plan, index, value, at)
        elif rule.rule == "state":
            self._state(plan, index, value, at)
        else:
            data = {**self._base[index], "name": rule.name, "value": value.value}
            self._emit(plan, index, "signal.sampled", data, at)

    def _counter(self, plan: Plan, index: int, value: Value, at: datetime) -> None:
        rule, memory = self._rules[index], plan._memory
        count = counter_value(value.value)
        if count is None:
            self._reject(
                plan, index, f"counter value {value.value!r} is not an integer >= 0", value
            )
            return
        last = memory.counters.get(rule.name)
        last_value = last[0] if last is not None else None
        if count == last_value:
            return
        rollover = rule.rollover_max or UNSIGNED_MAX.get(TYPE_NAMES.get(value.datatype, ""))
        grown = delta(last_value, count, rollover, rule.rollover_window)
        memory.counters[rule.name] = (count, value.timestamp_ms)
        plan.state[counter_key(rule, self._group)] = json.dumps(
            {"value": count, "at": value.timestamp_ms}
        )
        if grown <= 0:
            return
        if memory.order is None:
            held, _ = memory.held.get(rule.name, (0, at))
            memory.held[rule.name] = (held + grown, at)
            plan.state[held_key(rule)] = json.dumps(
                {"qty": held + grown, "at": format_timestamp(at)}
            )
            return
        data = {**self._base[index], "order": memory.order, "qty": grown}
        assert rule.event is not None
        self._emit(plan, index, rule.event, data, at)

    def _state(self, plan: Plan, index: int, value: Value, at: datetime) -> None:
        rule, memory = self._rules[index], plan._memory
        text = state_text(value.value)
        if text is None or text not in rule.states:
            self._reject(plan, index, f"state value {value.value!r} matches no key", value)
            return
        if memory.order is None:
            memory.waiting[rule.name] = (text, at)
            return
        memory.waiting.pop(rule.name, None)
        self._emit_state(plan, index, text, at)

    def _emit_state(self, plan: Plan, index: int, text: str, at: datetime) -> None:
        rule, memory = self._rules[index], plan._memory
        if memory.states.get(rule.name) == text:
            return
        memory.states[rule.name] = text
        plan.state[state_key(rule)] = text
        data = {**self._base[index], "order": memory.order}
        self._emit(plan, index, rule.states[text], data, at)

    def _emit(
        self, plan: Plan, index: int, event_type: str, data: dict[str, Any], at: datetime
    ) -> None:
        try:
            valid = validate_data(event_type, data)
        except WireValidationError as exc:
            payload = json.dumps(data, default=str).encode()[:_PAYLOAD_MAX]
            plan.rejects.append(Rejected(self._where[index], str(exc), payload))
            return
        plan.events.append(NewEvent(event_type, at, f"sparkplug:{self._rules[index].name}", valid))

    def _reject(self, plan: Plan, index: int, reason: str, value: Value) -> None:
        payload = repr(value.value).encode(errors="replace")[:_PAYLOAD_MAX]
        plan.rejects.append(Rejected(self._where[index], reason, payload))
