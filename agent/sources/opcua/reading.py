"""One value of a subscribed node: where it goes, when it was taken, and how rules read it."""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Route target of the order node (rule targets are indexes into ``config.nodes``).
ORDER_TARGET = -1
_MAX_EXACT_FLOAT = 2**53


@dataclass(frozen=True, slots=True)
class Reading:
    """One value of a subscribed node, with the rules (or the order) it feeds."""

    targets: tuple[int, ...]
    value: Any
    at: datetime
    bad_status: str | None = None
    """Name of the reading's status code when it is Bad; the value is then meaningless."""


def in_time_order(readings: Iterable[Reading]) -> Iterator[Reading]:
    """Interleave the readings of different nodes by timestamp, each node's in arrival order.

    Servers group a publish response by monitored item, so arrival order says nothing about
    which of two nodes changed first (was the count before or after the order change?); their
    source timestamps do, when the nodes share a clock (one PLC). Each node's own readings keep
    their arrival order even if its clock steps back: a counter read out of order would look
    like a reset and count twice.
    """
    by_node: dict[tuple[int, ...], list[Reading]] = {}
    for reading in readings:
        by_node.setdefault(reading.targets, []).append(reading)
    if len(by_node) <= 1:
        return iter([r for group in by_node.values() for r in group])
    return heapq.merge(*by_node.values(), key=_reading_time)


def _reading_time(reading: Reading) -> datetime:
    return reading.at


def state_text(value: Any) -> str | None:
    """A state value as configured in ``states``: ``true``/``false``, decimal, or the string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None


def counter_value(value: Any) -> int | None:
    """A counter reading as an int, or None when it is not an integer >= 0."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and value.is_integer() and 0 <= value < _MAX_EXACT_FLOAT:
        return int(value)
    return None


def node_where(namespace_uri: str, identifier: str) -> str:
    """A node in the expanded form a person can paste into an OPC UA browser."""
    return f"nsu={namespace_uri};{identifier}"
