"""A Sparkplug B edge node for tests, speaking the agent's own protobuf definitions over paho.

It publishes NBIRTH (seq 0, with bdSeq and every metric's alias, type and value), NDATA by
alias with the next seq, NDEATH as its will, answers NCMD ``Node Control/Rebirth`` with a new
NBIRTH, and, when told a primary host id, stores and forwards: while the host's STATE is not
``online`` it keeps each change (with its timestamp) and, once the host is back, publishes a
fresh NBIRTH followed by the kept changes as historical metrics.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.sources.sparkplug import sparkplug_b_pb2 as pb
from agent.sources.sparkplug.payload import REBIRTH_METRIC

UINT32, UINT64, BOOLEAN, STRING = 7, 8, 11, 12


@dataclass
class MetricDef:
    alias: int
    datatype: int
    value: Any


@dataclass
class EdgeNode:
    host: str
    port: int
    group: str
    node: str
    metrics: dict[str, MetricDef]
    primary_host: str | None = None
    bd_seq: int = 0
    seq: int = 0
    rebirth_requests: int = 0
    births: int = 0
    host_online: bool = False
    kept: list[tuple[str, Any, int]] = field(default_factory=list)
    _client: paho.Client | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- connection --------------------------------------------------------------------

    def connect(self) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-{self.node}")
        client.will_set(self._topic("NDEATH"), self._death(), qos=1, retain=False)
        client.on_message = self._on_message
        connected = threading.Event()
        client.on_connect = lambda *_: connected.set()
        client.connect(self.host, self.port, keepalive=5)
        client.loop_start()
        if not connected.wait(10):
            raise RuntimeError("edge node could not connect")
        subs = [(f"spBv1.0/{self.group}/NCMD/{self.node}", 1)]
        if self.primary_host is not None:
            subs.append((f"spBv1.0/STATE/{self.primary_host}", 1))
        client.subscribe(subs)
        self._client = client
        if self.primary_host is None:
            self.birth()

    def disconnect(self, *, gracefully: bool = True) -> None:
        """Leave with an NDEATH, or (not gracefully) as a crash: the broker sends the will."""
        client, self._client = self._client, None
        if client is None:
            return
        if gracefully:
            client.publish(self._topic("NDEATH"), self._death(), qos=1).wait_for_publish(10)
            client.disconnect()
        else:
            sock = client.socket()
            if sock is not None:
                sock.close()  # the broker notices the loss and publishes the will
        client.loop_stop()

    def restart(self, reset: dict[str, Any] | None = None) -> None:
        """A node restart: death, a new bdSeq, counters maybe reset, a new birth."""
        self.disconnect()
        self.bd_seq = (self.bd_seq + 1) % 256
        for name, value in (reset or {}).items():
            self.metrics[name].value = value
        self.connect()

    # -- publishing --------------------------------------------------------------------

    def birth(self) -> None:
        with self._lock:
            payload = pb.Payload(timestamp=_now_ms(), seq=0)
            self.seq = 0
            bd = payload.metrics.add()
            bd.name, bd.datatype, bd.long_value = "bdSeq", UINT64, self.bd_seq
            for name, metric in self.metrics.items():
                m = payload.metrics.add()
                m.name, m.alias, m.datatype, m.timestamp = (
                    name,
                    metric.alias,
                    metric.datatype,
                    payload.timestamp,
                )
                _set(m, metric.datatype, metric.value)
            self.births += 1
            self._publish("NBIRTH", payload)

    def set(self, name: str, value: Any, *, skip_seq: int = 0) -> None:
        """Change a metric: NDATA by alias now, or kept while the primary host is away."""
        with self._lock:
            self.metrics[name].value = value
            stamp = _now_ms()
            if self.primary_host is not None and not self.host_online:
                self.kept.append((name, value, stamp))
                return
            self.seq = (self.seq + skip_seq) % 256
            self._data([(name, value, stamp)], historical=False)

    def _data(self, changes: list[tuple[str, Any, int]], *, historical: bool) -> None:
        self.seq = (self.seq + 1) % 256
        payload = pb.Payload(timestamp=_now_ms(), seq=self.seq)
        for name, value, stamp in changes:
            metric = self.metrics[name]
            m = payload.metrics.add()
            m.alias, m.datatype, m.timestamp = metric.alias, metric.datatype, stamp
            if historical:
                m.is_historical = True
            _set(m, metric.datatype, value)
        self._publish("NDATA", payload)

    def _publish(self, kind: str, payload: Any) -> None:
        client = self._client
        if client is None:
            raise RuntimeError("not connected")
        client.publish(self._topic(kind), payload.SerializeToString(), qos=0)

    def _topic(self, kind: str) -> str:
        return f"spBv1.0/{self.group}/{kind}/{self.node}"

    def _death(self) -> bytes:
        payload = pb.Payload(timestamp=_now_ms())
        bd = payload.metrics.add()
        bd.name, bd.datatype, bd.long_value = "bdSeq", UINT64, self.bd_seq
        return bytes(payload.SerializeToString())

    # -- commands and the host's state -------------------------------------------------

    def _on_message(self, _client: Any, _userdata: Any, message: Any) -> None:
        if "/STATE/" in message.topic:
            online = bool(json.loads(message.payload).get("online"))
            came_back = online and not self.host_online
            self.host_online = online
            if came_back:
                self.birth()
                with self._lock:
                    kept, self.kept = self.kept, []
                    if kept:
                        self._data(kept, historical=True)
            return
        payload = pb.Payload.FromString(message.payload)
        if any(m.name == REBIRTH_METRIC and m.boolean_value for m in payload.metrics):
            self.rebirth_requests += 1
            self.birth()


def _set(metric: Any, datatype: int, value: Any) -> None:
    if datatype == BOOLEAN:
        metric.boolean_value = bool(value)
    elif datatype == STRING:
        metric.string_value = str(value)
    elif datatype == UINT64:
        metric.long_value = int(value)
    else:
        metric.int_value = int(value)


def _now_ms() -> int:
    return int(time.time() * 1000)
