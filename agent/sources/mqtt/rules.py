"""Subscription rules: how one MQTT message becomes one validated event, or a reasoned reject.

A :class:`Rule` is a compiled :class:`MqttSubscription`; :class:`RuleBook` finds the rule of a
topic (first matching subscription in configuration order, cached per topic). Everything here is
pure and synchronous: it runs once per message on the source's hot path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from paho.mqtt.client import topic_matches_sub

from agent.errors import RejectedError
from agent.queue.model import NewEvent
from agent.sources.mqtt.config import MqttSubscription
from agent.sources.pointer import MISSING, compile_pointer
from wire.errors import WireValidationError
from wire.events import validate_data

__all__ = ["Rule", "RuleBook"]

#: Longest ``source`` an event may carry (``wire.events.Event.source``).
_SOURCE_MAX_CHARS = 512
#: Topics remembered with their rule; the cache is cleared when it grows past this.
_TOPIC_CACHE_SIZE = 10_000
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})"
)


class Rule:
    """One subscription, compiled: its pointers parsed once, applied to every message."""

    __slots__ = (
        "_dedupe",
        "_fields",
        "_needs_payload",
        "_occurred_at",
        "_static",
        "_topic_fields",
        "event",
        "topic_filter",
    )

    def __init__(self, subscription: MqttSubscription) -> None:
        self.topic_filter = subscription.topic
        self.event = subscription.event
        self._fields = tuple(
            (name, compile_pointer(pointer)) for name, pointer in subscription.fields.items()
        )
        self._static = dict(subscription.static)
        self._topic_fields = tuple(subscription.topic_fields.items())
        self._occurred_at = (
            compile_pointer(subscription.occurred_at) if subscription.occurred_at else None
        )
        self._dedupe = compile_pointer(subscription.dedupe_key) if subscription.dedupe_key else None
        self._needs_payload = bool(self._fields or self._occurred_at or self._dedupe)

    def apply(self, topic: str, payload: bytes | bytearray, received_at: datetime) -> NewEvent:
        """The event this message stands for; :class:`RejectedError` saying why when none."""
        document: Any = None
        if self._needs_payload:
            try:
                document = json.loads(payload)
            except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
                raise _reject(topic, f"payload is not JSON: {exc}") from None
            except RecursionError:
                raise _reject(topic, "payload is nested too deeply to be read") from None
        data = dict(self._static) if self._static else {}
        missing: dict[str, str] = {}
        if self._topic_fields:
            levels = topic.split("/")
            for name, level in self._topic_fields:
                try:
                    data[name] = levels[level]
                except IndexError:
                    raise _reject(topic, f"/{name}: topic has no level {level}") from None
        for name, pointer in self._fields:
            value = pointer.get(document)
            if value is MISSING:
                missing[name] = pointer.text
            else:
                data[name] = value
        try:
            data = validate_data(self.event, data, location="")
        except WireValidationError as exc:
            raise _reject(topic, _explain(exc, missing)) from None
        occurred_at = self._timestamp(topic, document) if self._occurred_at else received_at
        dedupe_key = self._dedupe_key(topic, document) if self._dedupe else None
        source = "mqtt:" + topic
        if len(source) > _SOURCE_MAX_CHARS:
            raise _reject(topic, f"topic is longer than {_SOURCE_MAX_CHARS - 5} characters")
        return NewEvent(self.event, occurred_at, source, data, dedupe_key)

    def _timestamp(self, topic: str, document: Any) -> datetime:
        pointer = self._occurred_at
        assert pointer is not None
        value = pointer.get(document)
        if value is MISSING:
            raise _reject(topic, f"occurred_at: pointer {pointer} not in payload")
        if not isinstance(value, str) or not _RFC3339.fullmatch(value):
            raise _reject(
                topic,
                f"occurred_at: {pointer}: {_short(value)} is not an RFC 3339 timestamp "
                "with a UTC offset",
            )
        try:
            parsed = datetime.fromisoformat(value.upper())
        except ValueError as exc:
            raise _reject(topic, f"occurred_at: {pointer}: {exc}") from None
        return parsed.astimezone(UTC)

    def _dedupe_key(self, topic: str, document: Any) -> str:
        pointer = self._dedupe
        assert pointer is not None
        value = pointer.get(document)
        if value is MISSING:
            raise _reject(topic, f"dedupe_key: pointer {pointer} not in payload")
        if isinstance(value, bool) or not isinstance(value, str | int | float) or value == "":
            raise _reject(
                topic, f"dedupe_key: {pointer}: {_short(value)} is not a non-empty string or number"
            )
        return f"mqtt:{self.topic_filter}:{value}"


class RuleBook:
    """The rules of all subscriptions; finds the first one whose filter matches a topic."""

    def __init__(self, subscriptions: Sequence[MqttSubscription]) -> None:
        self.rules = tuple(Rule(sub) for sub in subscriptions)
        self._by_topic: dict[str, Rule | None] = {}

    def rule_for(self, topic: str) -> Rule | None:
        """The rule for messages on ``topic``, or None when no subscription matches it."""
        try:
            return self._by_topic[topic]
        except KeyError:
            pass
        found = next((r for r in self.rules if topic_matches_sub(r.topic_filter, topic)), None)
        if len(self._by_topic) >= _TOPIC_CACHE_SIZE:
            self._by_topic.clear()
        self._by_topic[topic] = found
        return found

    def apply(self, topic: str, payload: bytes | bytearray, received_at: datetime) -> NewEvent:
        """Map one message with the rule of its topic; :class:`RejectedError` when impossible."""
        rule = self.rule_for(topic)
        if rule is None:
            raise _reject(topic, "matches no configured subscription")
        return rule.apply(topic, payload, received_at)


def _reject(topic: str, detail: str) -> RejectedError:
    return RejectedError(f"topic {topic}: {detail}")


def _explain(exc: WireValidationError, missing: dict[str, str]) -> str:
    """``/qty: field required (pointer /qty not in payload)`` from a validation error."""
    location = exc.location or "data"
    message = exc.message[:1].lower() + exc.message[1:]
    field = exc.location.split("/")[1] if exc.location.count("/") >= 1 else ""
    if field in missing:
        hint = f" (pointer {missing[field]} not in payload)"
    elif not exc.location and missing:
        hint = f" (pointers {', '.join(missing.values())} not in payload)"
    else:
        hint = ""
    return f"{location}: {message}{hint}"


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 64 else text[:61] + "..."
