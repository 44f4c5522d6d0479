"""Sparkplug B ingest benchmark: NDATA metrics/s into a durable QueueStore, beside the plain JSON
MQTT path and ``mosquitto_sub``, in the same run.

Run by hand from the repository root::

    python3 bench/sparkplug_ingest.py

or through ``python -m bench`` (which calls :func:`run`). Environment: ``BENCH_MESSAGES``
(default 50000 NDATA messages), ``BENCH_METRICS`` (metrics per NDATA, default 10).

A backlog of one NBIRTH and N NDATA messages (QoS 1, each with M counter metrics by alias, each
grown by one) is published into a persistent session on a fresh mosquitto, then drained: by
``mosquitto_sub -q 1 -c -C N`` (the physical limit) and by SparkplugSource (every payload
decoded, births and seq checked, M counter rules applied, the events and counter state
committed with fsync, PUBACK after COMMIT). The JSON MQTT rows are the same backlog drain of
``bench/mqtt_ingest.py`` (N messages of 200 bytes, one event each), measured in the same run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.sparkplug import sparkplug_b_pb2 as pb
from agent.sources.sparkplug.config import SparkplugConfig
from agent.sources.sparkplug.source import SparkplugSource
from bench import mqtt_ingest
from tests.fixtures.mosquitto import Mosquitto, publish_qos1, running_mosquitto

GROUP, NODE, CLIENT_ID = "bench", "node-1", "bench-spb-receiver"
FILTER = f"spBv1.0/{GROUP}/#"


def messages(count: int, metrics: int) -> Iterator[tuple[str, bytes]]:
    """NBIRTH, then ``count`` NDATA each growing every counter metric by one."""
    birth = pb.Payload(timestamp=1, seq=0)
    bd = birth.metrics.add()
    bd.name, bd.datatype, bd.long_value = "bdSeq", 8, 0
    for m in range(metrics):
        metric = birth.metrics.add()
        metric.name, metric.alias, metric.datatype, metric.int_value = f"C{m}", m + 1, 7, 0
    yield f"spBv1.0/{GROUP}/NBIRTH/{NODE}", birth.SerializeToString()
    for i in range(1, count + 1):
        data = pb.Payload(timestamp=1 + i, seq=i % 256)
        for m in range(metrics):
            metric = data.metrics.add()
            metric.alias, metric.timestamp, metric.int_value = m + 1, 1 + i, i
        yield f"spBv1.0/{GROUP}/NDATA/{NODE}", data.SerializeToString()


def fill(broker: Mosquitto, count: int, metrics: int) -> None:
    cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv311"]
    subprocess.run([*cmd, "-c", "-i", CLIENT_ID, "-q", "1", "-t", FILTER, "-E"], check=True)
    sent = publish_qos1(broker.host, broker.port, messages(count, metrics), timeout_seconds=900)
    if sent != count + 1:
        raise RuntimeError(f"the broker took {sent} of {count + 1} messages")


def drain_sub(broker: Mosquitto, count: int) -> float:
    cmd = ["mosquitto_sub", "-h", broker.host, "-p", str(broker.port), "-V", "mqttv311"]
    started = time.perf_counter()
    subprocess.run(
        [*cmd, "-c", "-i", CLIENT_ID, "-q", "1", "-t", FILTER, "-C", str(count + 1)],
        stdout=subprocess.DEVNULL,
        check=True,
        timeout=900,
    )
    return time.perf_counter() - started


async def _drain_source(broker: Mosquitto, state: Path, count: int, metrics: int) -> float:
    config = SparkplugConfig.model_validate(
        {
            "group_id": GROUP,
            "broker": {"host": broker.host, "port": broker.port},
            "order": {"value": "WH/MO/00001"},
            "metrics": [
                {
                    "name": f"c{m}",
                    "node": NODE,
                    "metric": f"C{m}",
                    "rule": "counter",
                    "event": "production.reported",
                }
                for m in range(metrics)
            ],
        }
    )
    queue = await QueueStore.open(state / "queue.db", "gw-bench", QueueConfig())
    source = SparkplugSource(config, queue, CLIENT_ID)
    started = time.perf_counter()
    task = asyncio.create_task(source.run())
    try:
        while (stats := source.stats()).events_queued < count * metrics:
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        if stats.events_queued != count * metrics or stats.seq_gaps or stats.rejected:
            raise RuntimeError(f"unexpected outcome: {stats}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await queue.close()
    return elapsed


def drain_source(broker: Mosquitto, count: int, metrics: int) -> float:
    with tempfile.TemporaryDirectory(prefix="spb-bench-queue-") as state:
        return asyncio.run(_drain_source(broker, Path(state), count, metrics))


def backlog(drain: Callable[[Mosquitto], float], count: int, metrics: int) -> float:
    with (
        tempfile.TemporaryDirectory(prefix="spb-bench-") as tmp,
        running_mosquitto(Path(tmp)) as broker,
    ):
        fill(broker, count, metrics)
        return drain(broker)


def run(messages: int = 50_000, metrics: int = 10) -> dict[str, Any]:
    """Run every case and print the table; return the figures (rates per second)."""
    sub = backlog(lambda b: drain_sub(b, messages), messages, metrics)
    spb = backlog(lambda b: drain_source(b, messages, metrics), messages, metrics)
    plain = mqtt_ingest.run(
        messages=messages,
        only=("backlog: mosquitto_sub", "backlog: MqttSource -> QueueStore, MQTT 3.1.1"),
    )["cases"]
    json_case = plain["backlog: MqttSource -> QueueStore, MQTT 3.1.1"]
    json_sub = plain["backlog: mosquitto_sub -q 1 -c"]
    result = {
        "messages": messages,
        "metrics_per_message": metrics,
        "sparkplug_msg_rate": messages / spb,
        "sparkplug_metric_rate": messages * metrics / spb,
        "sparkplug_sub_msg_rate": (messages + 1) / sub,
        "json_msg_rate": json_case["rate"],
        "json_sub_msg_rate": json_sub["rate"],
    }
    print(
        f"\nSparkplug B ingest, backlog of {messages:,} NDATA x {metrics} counter metrics, "
        f"QoS 1, durability power, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'case':<52} {'msg/s':>9} {'metrics/s':>10} {'vs sub':>7}")
    rows = [
        ("mosquitto_sub -q 1 -c, Sparkplug backlog", result["sparkplug_sub_msg_rate"], None, None),
        (
            "SparkplugSource -> QueueStore (events = metrics)",
            result["sparkplug_msg_rate"],
            result["sparkplug_metric_rate"],
            result["sparkplug_msg_rate"] / result["sparkplug_sub_msg_rate"],
        ),
        ("mosquitto_sub -q 1 -c, JSON backlog", result["json_sub_msg_rate"], None, None),
        (
            "MqttSource -> QueueStore, JSON, MQTT 3.1.1",
            result["json_msg_rate"],
            result["json_msg_rate"],
            result["json_msg_rate"] / result["json_sub_msg_rate"],
        ),
    ]
    for name, rate, per_metric, ratio in rows:
        shown_metric = f"{per_metric:,.0f}" if per_metric is not None else ""
        shown_ratio = f"{ratio:.2f}" if ratio is not None else ""
        print(f"{name:<52} {rate:>9,.0f} {shown_metric:>10} {shown_ratio:>7}")
    return result


def main() -> None:
    run(
        messages=int(os.environ.get("BENCH_MESSAGES", "50000")),
        metrics=int(os.environ.get("BENCH_METRICS", "10")),
    )


if __name__ == "__main__":
    main()
