"""Sparkplug B topics and payloads: what a message is, the values of its metrics, what we send.

Payloads are the Sparkplug 3.0 protobuf ``Payload`` (``sparkplug_b_pb2``, generated from the
specification's schema); the STATE certificate of a primary host is JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from agent.errors import RejectedError
from agent.sources.sparkplug import sparkplug_b_pb2 as pb

NAMESPACE = "spBv1.0"
REBIRTH_METRIC = "Node Control/Rebirth"
BDSEQ_METRIC = "bdSeq"
MESSAGE_TYPES = frozenset(
    {"NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA", "NCMD", "DCMD"}
)

#: Sparkplug data type number -> name, for the types whose values rules can read.
TYPE_NAMES = {
    1: "Int8",
    2: "Int16",
    3: "Int32",
    4: "Int64",
    5: "UInt8",
    6: "UInt16",
    7: "UInt32",
    8: "UInt64",
    9: "Float",
    10: "Double",
    11: "Boolean",
    12: "String",
    13: "DateTime",
    14: "Text",
}
#: Highest value of each unsigned type: where a counter of that type wraps.
UNSIGNED_MAX = {"UInt8": 2**8 - 1, "UInt16": 2**16 - 1, "UInt32": 2**32 - 1, "UInt64": 2**64 - 1}
_SIGNED_BITS = {"Int8": 8, "Int16": 16, "Int32": 32, "Int64": 64}

Payload = pb.Payload
Metric = pb.Payload.Metric


@dataclass(frozen=True, slots=True)
class Topic:
    """``spBv1.0/<group>/<type>/<edge node>[/<device>]``."""

    group: str
    kind: str
    node: str
    device: str | None


def parse_topic(topic: str) -> Topic | None:
    """The parts of a Sparkplug topic; None for STATE and anything that is not Sparkplug B."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or parts[2] not in MESSAGE_TYPES:
        return None
    return Topic(parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else None)


def decode(data: bytes) -> Any:
    """The protobuf payload, or :class:`RejectedError` naming why it is not one."""
    try:
        return Payload.FromString(data)
    except DecodeError as exc:
        raise RejectedError(f"not a Sparkplug B payload: {exc}") from exc


def metric_value(metric: Any, datatype: int) -> Any:
    """The metric's value as Python (int, float, bool, str), None when null or unreadable."""
    if metric.is_null:
        return None
    name = TYPE_NAMES.get(datatype)
    field = metric.WhichOneof("value")
    if name is None or field is None:
        return None
    value = getattr(metric, field)
    bits = _SIGNED_BITS.get(name)
    if bits is not None and isinstance(value, int) and value >= 1 << (bits - 1):
        value -= 1 << bits  # signed integers travel as their two's complement
    if name in ("Float", "Double") and not isinstance(value, float):
        return None
    return value


def rebirth_request(timestamp_ms: int) -> bytes:
    """An NCMD payload asking an edge node to publish its births again."""
    payload = Payload(timestamp=timestamp_ms)
    metric = payload.metrics.add()
    metric.name = REBIRTH_METRIC
    metric.timestamp = timestamp_ms
    metric.datatype = 11
    metric.boolean_value = True
    return bytes(payload.SerializeToString())


def state_topic(host_id: str) -> str:
    return f"{NAMESPACE}/STATE/{host_id}"


def state_certificate(online: bool, timestamp_ms: int) -> bytes:
    """A primary host's STATE birth (online) or death: retained JSON, Sparkplug 3.0."""
    return json.dumps({"online": online, "timestamp": timestamp_ms}).encode()


def says_offline(data: bytes) -> bool:
    """Whether a STATE certificate says its host is offline (unreadable: not offline)."""
    try:
        state = json.loads(data)
    except ValueError:
        return False
    return isinstance(state, dict) and state.get("online") is False
