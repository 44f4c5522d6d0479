"""The demo line as a Sparkplug B edge node: the same parts, published over MQTT in protobuf.

It publishes NBIRTH (every metric with its alias and type), then NDATA by alias for each change
the simulated line makes, answers the agent's Rebirth requests with a new NBIRTH, and leaves
with NDEATH (also its MQTT will).
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.demo.line import SimulatedLine
from agent.sources.sparkplug import sparkplug_b_pb2 as pb
from agent.sources.sparkplug.payload import BDSEQ_METRIC, REBIRTH_METRIC

GROUP, NODE, HOST_ID = "demo", "line1", "plant-link-demo"
#: metric -> (alias, Sparkplug data type, initial value)
METRICS: dict[str, tuple[int, int, Any]] = {
    "GoodParts": (1, 7, 0),
    "ScrapParts": (2, 7, 0),
    "Running": (3, 11, False),
    "CurrentOrder": (4, 12, ""),
    "Temperature": (5, 10, 21.0),
}


def agent_section(broker_port: int, workcenter: str, finished: str) -> str:
    """The agent's ``[sparkplug]`` settings for this line."""
    rules = [
        (
            "good-parts",
            "GoodParts",
            'rule = "counter"\nevent = "production.reported"\nuom = "Units"',
        ),
        (
            "scrap-parts",
            "ScrapParts",
            f'rule = "counter"\nevent = "scrap.reported"\nproduct = "{finished}"',
        ),
        (
            "running",
            "Running",
            f'rule = "state"\nworkcenter = "{workcenter}"\n'
            'states = { true = "operation.started", false = "operation.paused" }',
        ),
        ("temperature", "Temperature", 'rule = "sample"\nunit = "degC"'),
    ]
    text = (
        f'\n[sparkplug]\ngroup_id = "{GROUP}"\nhost_id = "{HOST_ID}"\n'
        f'[sparkplug.broker]\nhost = "127.0.0.1"\nport = {broker_port}\n'
        "reconnect_max_seconds = 2.0\n"
        f'[sparkplug.order]\nnode = "{NODE}"\nmetric = "CurrentOrder"\n'
    )
    for name, metric, body in rules:
        text += f'\n[[sparkplug.metrics]]\nname = "{name}"\nnode = "{NODE}"\n'
        text += f'metric = "{metric}"\n{body}\n'
    return text


class SparkplugLine(SimulatedLine):
    """The simulated line publishing as edge node ``demo/line1`` instead of serving OPC UA."""

    def __init__(self, broker_port: int, orders: list[str], *, seed: int | None = None) -> None:
        super().__init__(0, orders, seed=seed)
        self.endpoint = f"mqtt://127.0.0.1:{broker_port} (Sparkplug B {GROUP}/{NODE})"
        self._port = broker_port
        self._values = {name: initial for name, (_, _, initial) in METRICS.items()}
        self._seq = 0
        self._lock = threading.Lock()
        self._client: paho.Client | None = None
        # The base class writes to these: here they name metrics instead of OPC UA nodes.
        self._good: Any = "GoodParts"
        self._scrap: Any = "ScrapParts"
        self._running: Any = "Running"
        self._order: Any = "CurrentOrder"
        self._temperature: Any = "Temperature"

    async def start(self) -> None:
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-{NODE}")
        client.will_set(f"spBv1.0/{GROUP}/NDEATH/{NODE}", _death(), qos=1)
        client.on_message = self._on_command
        client.connect("127.0.0.1", self._port, keepalive=10)
        client.subscribe(f"spBv1.0/{GROUP}/NCMD/{NODE}", qos=1)
        client.loop_start()
        self._client = client
        self._birth()

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            if client.is_connected():  # the demo may have stopped the broker first
                sent = client.publish(f"spBv1.0/{GROUP}/NDEATH/{NODE}", _death(), qos=1)
                with contextlib.suppress(RuntimeError, ValueError):
                    sent.wait_for_publish(5)
            client.disconnect()
            client.loop_stop()

    async def _write(self, node: object, value: object, kind: object) -> None:  # type: ignore[override]
        name = str(node)
        with self._lock:
            self._values[name] = value
            self._seq = (self._seq + 1) % 256
            payload = pb.Payload(timestamp=_now_ms(), seq=self._seq)
            _metric(payload, name, value, with_name=False)
            self._publish("NDATA", payload)

    def _birth(self) -> None:
        with self._lock:
            self._seq = 0
            payload = pb.Payload(timestamp=_now_ms(), seq=0)
            bd = payload.metrics.add()
            bd.name, bd.datatype, bd.long_value = BDSEQ_METRIC, 8, 0
            for name, value in self._values.items():
                _metric(payload, name, value, with_name=True)
            self._publish("NBIRTH", payload)

    def _publish(self, kind: str, payload: Any) -> None:
        if self._client is not None:
            self._client.publish(f"spBv1.0/{GROUP}/{kind}/{NODE}", payload.SerializeToString())

    def _on_command(self, _client: Any, _userdata: Any, message: Any) -> None:
        payload = pb.Payload.FromString(message.payload)
        if any(m.name == REBIRTH_METRIC and m.boolean_value for m in payload.metrics):
            self._birth()


def _metric(payload: Any, name: str, value: Any, *, with_name: bool) -> None:
    alias, datatype, _ = METRICS[name]
    metric = payload.metrics.add()
    if with_name:
        metric.name = name
    metric.alias, metric.datatype, metric.timestamp = alias, datatype, payload.timestamp
    if datatype == 11:
        metric.boolean_value = bool(value)
    elif datatype == 12:
        metric.string_value = str(value)
    elif datatype == 10:
        metric.double_value = float(value)
    else:
        metric.int_value = int(value)


def _death() -> bytes:
    payload = pb.Payload(timestamp=_now_ms())
    bd = payload.metrics.add()
    bd.name, bd.datatype, bd.long_value = BDSEQ_METRIC, 8, 0
    return bytes(payload.SerializeToString())


def _now_ms() -> int:
    return int(time.time() * 1000)
