"""The MES side of the demo: component consumption published over MQTT as the line makes parts."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections import Counter
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.demo.line import LineTally

COMPONENT = "BOLT-M6"
BOLTS_PER_PART = 4
PARTS_PER_MESSAGE = 10
TOPIC = "plant/line1/consumption"


def die_with_parent() -> None:
    """In a child process: receive SIGTERM when the demo dies, however it dies (Linux)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def mosquitto_path() -> str | None:
    """The mosquitto broker binary, if installed."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None
    )


class Broker:
    """A private mosquitto on a loopback port, with persistence in a temporary directory."""

    def __init__(self, binary: str, port: int) -> None:
        self.port = port
        self._dir = tempfile.TemporaryDirectory(prefix="plant-link-mqtt-")
        conf = Path(self._dir.name) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {self._dir.name}/\nmax_queued_messages 0\n"
        )
        self._proc = subprocess.Popen(
            [binary, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=die_with_parent,
        )

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(timeout=10)
        self._dir.cleanup()


class ConsumptionFeed:
    """Publishes a ``material.consumed`` message for every ten good parts, QoS 1."""

    def __init__(self, port: int, tally: LineTally) -> None:
        self._tally = tally
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="demo-mes")
        self._port = port
        self._reported: Counter[str] = Counter()

    async def run(self, stop: asyncio.Event) -> None:
        self._client.connect("127.0.0.1", self._port)
        self._client.loop_start()
        try:
            while not stop.is_set():
                await self._publish_due()
                await asyncio.sleep(0.2)
            await self._publish_due()
        finally:
            self._client.loop_stop()
            self._client.disconnect()

    async def _publish_due(self) -> None:
        for order, good in list(self._tally.good.items()):
            while good - self._reported[order] >= PARTS_PER_MESSAGE:
                qty = PARTS_PER_MESSAGE * BOLTS_PER_PART
                payload = {
                    "order": order,
                    "product": COMPONENT,
                    "qty": qty,
                    "msg_id": str(uuid.uuid4()),
                }
                info = self._client.publish(TOPIC, json.dumps(payload), qos=1)
                await asyncio.to_thread(info.wait_for_publish, 10)
                if info.is_published():
                    self._reported[order] += PARTS_PER_MESSAGE
                    self._tally.consumed[order] += qty
