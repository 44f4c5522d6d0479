"""The rules that turn OPC UA node values into events, and the memory they persist.

Rules work on batches of readings (taken in :func:`in_time_order`) and never do I/O:
:meth:`RuleEngine.plan` returns the events, the state to persist with them (in the same
transaction) and the rejects; :meth:`RuleEngine.commit` adopts the plan's memory once the queue
has made it durable. A plan that could not be stored is dropped and the same readings planned
again.

Production made while no order is known is held, not lost: the counter's baseline still
advances, the grown quantity is persisted (``opcua:held:<rule>``) with the baseline, and it is
reported against the first order that becomes known, at the time of the last held reading. A
state change while no order is known waits the same way: when an order arrives, the latest
mapped state is reported for it if it differs from the last one reported. Operators who start a
machine before entering the order then lose neither output nor the start. A change of order
alone emits nothing: events carry the order current when their value changed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from agent.queue.model import NewEvent
from agent.sources.opcua.config import OpcuaConfig, OpcuaNodeRule
from agent.sources.opcua.counter import delta
from agent.sources.opcua.datatypes import UNSIGNED_MAX, state_keys_problem
from agent.sources.opcua.reading import (
    ORDER_TARGET,
    Reading,
    counter_value,
    in_time_order,
    node_where,
    state_text,
)
from agent.sources.signal_rules import base_data, parse_held
from wire.errors import WireValidationError
from wire.events import format_timestamp, validate_data

log = logging.getLogger(__name__)

_PAYLOAD_MAX = 1024


@dataclass(frozen=True, slots=True)
class RejectedValue:
    """A value no rule could accept, for ``QueueStore.record_reject``."""

    source: str
    where: str
    reason: str
    payload: bytes


@dataclass(slots=True)
class _Memory:
    """What the rules remember between readings; copied per plan, adopted on commit."""

    order: str | None = None
    counters: dict[str, int] = field(default_factory=dict)
    held: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    states: dict[str, str] = field(default_factory=dict)
    waiting_states: dict[str, tuple[str, datetime]] = field(default_factory=dict)

    def copy(self) -> _Memory:
        return _Memory(
            self.order,
            dict(self.counters),
            dict(self.held),
            dict(self.states),
            dict(self.waiting_states),
        )


@dataclass(slots=True)
class Plan:
    """The outcome of a batch of readings: enqueue ``events`` with ``state``, then commit."""

    events: list[NewEvent]
    state: dict[str, str]
    rejects: list[RejectedValue]
    _memory: _Memory
    unmatched: list[str] = field(default_factory=list)
    """State values no ``states`` key maps, in words (counted, not events)."""


def counter_key(name: str, where: str) -> str:
    """State key of a counter rule's last reading of node ``where`` (see :func:`node_where`).

    Keyed by the node too: a rule pointed at another node starts from a fresh baseline
    instead of taking the other node's count for its own.
    """
    return f"opcua:counter:{name}:{where}"


def legacy_counter_key(name: str) -> str:
    """The key of a counter's last reading before it was keyed by node; read once, cleared."""
    return f"opcua:counter:{name}"


def held_key(name: str) -> str:
    """State key of a counter rule's production held until an order is known."""
    return f"opcua:held:{name}"


def state_key(name: str) -> str:
    """State key of a state rule's last reported value."""
    return f"opcua:state:{name}"


class RuleEngine:
    """Applies the configured node rules to readings; knows the current order."""

    def __init__(self, config: OpcuaConfig) -> None:
        self._rules = config.nodes
        self._order_where = (
            node_where(config.order.node.namespace_uri, config.order.node.identifier)
            if config.order is not None and config.order.node is not None
            else "order"
        )
        self._fixed_order = config.order.value if config.order is not None else None
        self._base = [base_data(rule, "[[opcua.nodes]]") for rule in self._rules]
        self._where = [node_where(r.namespace_uri, r.identifier) for r in self._rules]
        self._rollover = [r.rollover_max for r in self._rules]
        self._memory = _Memory(order=self._fixed_order)
        self._legacy: set[str] = set()

    @property
    def current_order(self) -> str | None:
        return self._memory.order

    @property
    def held_qty(self) -> int:
        """Production held until an order is known, over all counters."""
        return sum(qty for qty, _ in self._memory.held.values())

    def state_keys(self) -> list[str]:
        """The keys :meth:`load` wants from the queue's state."""
        keys: list[str] = []
        for rule in self._rules:
            if rule.rule == "counter":
                where = node_where(rule.namespace_uri, rule.identifier)
                keys += [counter_key(rule.name, where), legacy_counter_key(rule.name)]
                keys.append(held_key(rule.name))
            elif rule.rule == "state":
                keys.append(state_key(rule.name))
        return keys

    def load(self, state: Mapping[str, str | None]) -> None:
        """Adopt persisted memory (after a restart); unreadable entries are ignored."""
        memory = _Memory(order=self._memory.order)
        self._legacy = set()
        for index, rule in enumerate(self._rules):
            if rule.rule == "counter":
                last = state.get(counter_key(rule.name, self._where[index]))
                legacy = state.get(legacy_counter_key(rule.name))
                if legacy:
                    # Written before counters were keyed by node: it belongs to the node the
                    # rule reads now unless that node already has its own value.
                    self._legacy.add(rule.name)
                    if last is None:
                        last = legacy
                if last is not None and last.isdigit():
                    memory.counters[rule.name] = int(last)
                held = parse_held(state.get(held_key(rule.name)))
                if held is not None:
                    memory.held[rule.name] = held
            elif rule.rule == "state":
                last_state = state.get(state_key(rule.name))
                if last_state is not None:
                    memory.states[rule.name] = last_state
        self._memory = memory

    def adopt_types(self, types: Mapping[int, str]) -> list[str]:
        """Learn each rule's node data type (rule index -> type name, ``UInt32``…).

        A counter without ``rollover_max`` wraps at its unsigned type's maximum. Returns, in
        words, the rules that can never work on their node's type (a state rule whose
        ``states`` keys its values can never read as).
        """
        problems: list[str] = []
        for index, rule in enumerate(self._rules):
            kind = types.get(index)
            if kind is None:
                continue
            if rule.rule == "counter" and rule.rollover_max is None:
                self._rollover[index] = UNSIGNED_MAX.get(kind)
            elif rule.rule == "state":
                problem = state_keys_problem(rule, kind)
                if problem is not None:
                    problems.append(f"{rule.name!r} ({self._where[index]}): {problem}")
        return problems

    def plan(self, readings: Iterable[Reading]) -> Plan:
        """Apply the rules to ``readings`` (see :func:`in_time_order`); this engine is unchanged."""
        plan = Plan([], {}, [], self._memory.copy())
        for reading in in_time_order(readings):
            for target in reading.targets:
                if target == ORDER_TARGET:
                    self._apply_order(plan, reading)
                else:
                    self._apply_rule(plan, target, reading)
        return plan

    def commit(self, plan: Plan) -> None:
        """Adopt ``plan``'s memory: its events and state are durable now."""
        self._memory = plan._memory
        self._legacy -= {n for n in self._legacy if plan.state.get(legacy_counter_key(n)) == ""}

    # -- the order -------------------------------------------------------------------------

    def _apply_order(self, plan: Plan, reading: Reading) -> None:
        memory = plan._memory
        order: str | None = None
        if reading.bad_status is not None:
            self._reject(plan, "order", self._order_where, f"status {reading.bad_status}", reading)
        elif not isinstance(reading.value, str):
            reason = f"order value of type {type(reading.value).__name__} is not a string"
            self._reject(plan, "order", self._order_where, reason, reading)
        elif reading.value.strip():
            try:
                validate_data("order.completed", {"order": reading.value, "backorder": False})
            except WireValidationError as exc:
                self._reject(plan, "order", self._order_where, f"order: {exc.message}", reading)
            else:
                order = reading.value.strip()
        if order == memory.order:
            return
        if order is None:
            log.info("no current order: production is held until one is known")
        else:
            log.info("current order is now %s", order, extra={"order": order})
        memory.order = order
        if order is not None:
            self._release_waiting(plan, order)

    def _release_waiting(self, plan: Plan, order: str) -> None:
        memory, before = plan._memory, len(plan.events)
        for index, rule in enumerate(self._rules):
            if rule.name in memory.held:
                qty, at = memory.held.pop(rule.name)
                plan.state[held_key(rule.name)] = ""
                self._emit_counter(plan, index, order, qty, at)
            if rule.name in memory.waiting_states:
                text, at = memory.waiting_states.pop(rule.name)
                self._emit_state(plan, index, order, text, at)
        if len(plan.events) > before:
            log.info(
                "released %d held events to order %s",
                len(plan.events) - before,
                order,
                extra={"order": order},
            )

    # -- the rules -------------------------------------------------------------------------

    def _apply_rule(self, plan: Plan, index: int, reading: Reading) -> None:
        rule = self._rules[index]
        if reading.bad_status is not None:
            self._reject_rule(plan, index, f"status {reading.bad_status}", reading)
        elif rule.rule == "counter":
            self._apply_counter(plan, index, reading)
        elif rule.rule == "state":
            self._apply_state(plan, index, reading)
        else:
            self._apply_sample(plan, index, reading)

    def _apply_counter(self, plan: Plan, index: int, reading: Reading) -> None:
        rule, memory = self._rules[index], plan._memory
        value = counter_value(reading.value)
        if value is None:
            reason = (
                f"counter value {reading.value!r} ({type(reading.value).__name__}) "
                "is not an integer >= 0"
            )
            self._reject_rule(plan, index, reason, reading)
            return
        last = memory.counters.get(rule.name)
        if value == last:
            return
        grown = delta(last, value, self._rollover[index], rule.rollover_window)
        memory.counters[rule.name] = value
        plan.state[counter_key(rule.name, self._where[index])] = str(value)
        if rule.name in self._legacy:
            plan.state[legacy_counter_key(rule.name)] = ""
        if last is not None and value < last:
            log.debug("counter %s went from %d to %d (+%d)", rule.name, last, value, grown)
        if grown <= 0:
            return
        if memory.order is None:
            held, _ = memory.held.get(rule.name, (0, reading.at))
            memory.held[rule.name] = (held + grown, reading.at)
            plan.state[held_key(rule.name)] = json.dumps(
                {"qty": held + grown, "at": format_timestamp(reading.at)}
            )
            return
        self._emit_counter(plan, index, memory.order, grown, reading.at)

    def _apply_state(self, plan: Plan, index: int, reading: Reading) -> None:
        rule, memory = self._rules[index], plan._memory
        text = state_text(reading.value)
        if text is None:
            reason = f"state value {reading.value!r} ({type(reading.value).__name__}) has no text"
            self._reject_rule(plan, index, reason, reading)
            return
        if text not in rule.states:
            plan.unmatched.append(
                f"{rule.name} ({self._where[index]}): value {text!r} matches no key of 'states'"
            )
            return
        if memory.order is None:
            memory.waiting_states[rule.name] = (text, reading.at)
            return
        memory.waiting_states.pop(rule.name, None)
        self._emit_state(plan, index, memory.order, text, reading.at)

    def _apply_sample(self, plan: Plan, index: int, reading: Reading) -> None:
        rule, value = self._rules[index], reading.value
        if not isinstance(value, bool | int | float | str):
            reason = f"sample value of type {type(value).__name__} is not a number, bool or string"
            self._reject_rule(plan, index, reason, reading)
            return
        data = {**self._base[index], "name": rule.name, "value": value}
        self._emit(plan, index, "signal.sampled", data, reading.at, reading)

    # -- events and rejects ----------------------------------------------------------------

    def _emit_counter(self, plan: Plan, index: int, order: str, qty: int, at: datetime) -> None:
        rule = self._rules[index]
        assert rule.event is not None
        data = {**self._base[index], "order": order, "qty": qty}
        self._emit(plan, index, rule.event, data, at, None)

    def _emit_state(self, plan: Plan, index: int, order: str, text: str, at: datetime) -> None:
        rule, memory = self._rules[index], plan._memory
        if memory.states.get(rule.name) == text:
            return
        memory.states[rule.name] = text
        plan.state[state_key(rule.name)] = text
        data = {**self._base[index], "order": order}
        self._emit(plan, index, rule.states[text], data, at, None)

    def _emit(
        self,
        plan: Plan,
        index: int,
        event_type: str,
        data: dict[str, Any],
        at: datetime,
        reading: Reading | None,
    ) -> None:
        rule = self._rules[index]
        try:
            valid = validate_data(event_type, data)
        except WireValidationError as exc:
            payload = json.dumps(data, default=str).encode()
            plan.rejects.append(
                RejectedValue(_source(rule), self._where[index], str(exc), payload[:_PAYLOAD_MAX])
            )
            return
        plan.events.append(NewEvent(event_type, at, _source(rule), valid))

    def _reject_rule(self, plan: Plan, index: int, reason: str, reading: Reading) -> None:
        self._reject(plan, self._rules[index].name, self._where[index], reason, reading)

    @staticmethod
    def _reject(plan: Plan, name: str, where: str, reason: str, reading: Reading) -> None:
        payload = repr(reading.value).encode(errors="replace")[:_PAYLOAD_MAX]
        plan.rejects.append(RejectedValue(f"opcua:{name}", where, reason, payload))


def _source(rule: OpcuaNodeRule) -> str:
    return f"opcua:{rule.name}"
