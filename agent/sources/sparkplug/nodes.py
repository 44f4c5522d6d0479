"""What the host knows of each edge node: its birth certificate, sequence and whether it is online.

Sparkplug B DATA messages name their metrics by the alias the birth certificate gave them, so
DATA is readable only after its BIRTH. Every message of an edge node after its NBIRTH (seq 0)
carries the next ``seq`` (mod 256); a gap means messages were lost. Both, and an NDEATH whose
``bdSeq`` is not the one of the birth it should end, are answered with a Rebirth request: the
node then publishes its births again with every current value, which counter arithmetic
absorbs, so a lost DATA message costs no count.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.sources.sparkplug.payload import BDSEQ_METRIC, Topic, metric_value


@dataclass(frozen=True, slots=True)
class Value:
    """One metric value of a message, resolved to its name and data type."""

    device: str | None
    metric: str
    datatype: int
    value: Any
    timestamp_ms: int | None
    historical: bool


@dataclass(slots=True)
class Outcome:
    """What one message means: its values, and why the node must be asked for a rebirth."""

    values: list[Value] = field(default_factory=list)
    rebirth: str | None = None
    """The problem, in words, that makes the host ask for a rebirth (None: all is well)."""


@dataclass(slots=True)
class _Node:
    bd_seq: int | None = None
    seq: int | None = None
    online: bool = False
    aliases: dict[tuple[str | None, int], tuple[str, int]] = field(default_factory=dict)
    types: dict[tuple[str | None, str], int] = field(default_factory=dict)
    devices: dict[str, bool] = field(default_factory=dict)


class NodeBook:
    """The births, sequences and liveness of the edge nodes of one group."""

    def __init__(self) -> None:
        self._nodes: dict[str, _Node] = {}

    def offline(self) -> list[str]:
        """Edge nodes (and ``node/device``) that were born and then died, by name."""
        found = []
        for name, node in sorted(self._nodes.items()):
            if node.bd_seq is not None and not node.online:
                found.append(name)
            found += [f"{name}/{d}" for d, up in sorted(node.devices.items()) if not up]
        return found

    def online(self) -> int:
        return sum(1 for node in self._nodes.values() if node.online)

    def apply(self, topic: Topic, payload: Any) -> Outcome:
        """Update what is known from one message and resolve its metrics."""
        kind = topic.kind
        if kind == "NBIRTH":
            return self._nbirth(topic, payload)
        if kind == "NDEATH":
            return self._ndeath(topic, payload)
        node = self._nodes.get(topic.node)
        if node is None or not node.online:
            return Outcome(self._by_name(topic, payload), f"{kind} before NBIRTH")
        problem = self._next_seq(node, payload)
        if kind == "DBIRTH":
            born = topic.device or ""
            node.devices[born] = True
            for key in [k for k in node.aliases if k[0] == born]:
                del node.aliases[key]
            outcome = Outcome(self._learn(node, born, payload), problem)
        elif kind == "DDEATH":
            node.devices[topic.device or ""] = False
            outcome = Outcome([], problem)
        elif kind in ("NDATA", "DDATA"):
            device = topic.device if kind == "DDATA" else None
            if device is not None and not node.devices.get(device):
                return Outcome(self._by_name(topic, payload), f"DDATA of {device} before DBIRTH")
            outcome = Outcome(self._resolve(node, device, payload), problem)
        else:
            outcome = Outcome()  # NCMD/DCMD: commands to the node, not from it
        return outcome

    # -- births and deaths -------------------------------------------------------------

    def _nbirth(self, topic: Topic, payload: Any) -> Outcome:
        node = _Node(online=True, seq=payload.seq if payload.HasField("seq") else 0)
        node.bd_seq = _bd_seq(payload)
        self._nodes[topic.node] = node
        problem = None if node.seq == 0 else f"NBIRTH with seq {node.seq}, not 0"
        return Outcome(self._learn(node, None, payload), problem)

    def _ndeath(self, topic: Topic, payload: Any) -> Outcome:
        node = self._nodes.get(topic.node)
        if node is None:
            return Outcome()
        bd_seq = _bd_seq(payload)
        if bd_seq is not None and node.bd_seq is not None and bd_seq != node.bd_seq:
            # The death certificate of an earlier session (the broker sent the old will late).
            return Outcome([], f"NDEATH bdSeq {bd_seq} does not match NBIRTH bdSeq {node.bd_seq}")
        node.online = False
        node.devices = dict.fromkeys(node.devices, False)
        return Outcome()

    def _next_seq(self, node: _Node, payload: Any) -> str | None:
        if not payload.HasField("seq"):
            return None
        seq, expected = payload.seq, None if node.seq is None else (node.seq + 1) % 256
        node.seq = seq
        if expected is not None and seq != expected:
            return f"seq gap: expected {expected}, got {seq}"
        return None

    # -- metrics -----------------------------------------------------------------------

    def _learn(self, node: _Node, device: str | None, payload: Any) -> list[Value]:
        """Take a birth's metric names, aliases and types; return its current values."""
        values = []
        for metric in payload.metrics:
            if not metric.name:
                continue
            node.types[(device, metric.name)] = metric.datatype
            if metric.HasField("alias"):
                node.aliases[(device, metric.alias)] = (metric.name, metric.datatype)
            if device is None and metric.name == BDSEQ_METRIC:
                continue
            values.append(_value(device, metric.name, metric.datatype, metric, payload))
        return values

    def _resolve(self, node: _Node, device: str | None, payload: Any) -> list[Value]:
        values = []
        for metric in payload.metrics:
            if metric.name:
                datatype = metric.datatype or node.types.get((device, metric.name), 0)
                values.append(_value(device, metric.name, datatype, metric, payload))
            elif metric.HasField("alias"):
                known = node.aliases.get((device, metric.alias))
                if known is not None:
                    values.append(_value(device, known[0], known[1], metric, payload))
        return values

    @staticmethod
    def _by_name(topic: Topic, payload: Any) -> list[Value]:
        """Values of an unborn node that name their metric and type (aliases mean nothing)."""
        device = topic.device if topic.kind in ("DDATA", "DBIRTH") else None
        return [
            _value(device, m.name, m.datatype, m, payload)
            for m in payload.metrics
            if m.name and m.datatype and m.name != BDSEQ_METRIC
        ]


def _value(device: str | None, name: str, datatype: int, metric: Any, payload: Any) -> Value:
    stamp = metric.timestamp if metric.HasField("timestamp") else None
    if stamp is None and payload.HasField("timestamp"):
        stamp = payload.timestamp
    return Value(
        device, name, datatype, metric_value(metric, datatype), stamp, metric.is_historical
    )


def _bd_seq(payload: Any) -> int | None:
    for metric in payload.metrics:
        if metric.name == BDSEQ_METRIC:
            value = metric_value(metric, metric.datatype or 8)
            return value if isinstance(value, int) else None
    return None
