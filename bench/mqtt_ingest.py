"""MQTT ingest benchmark: MqttSource into a durable QueueStore, beside ``mosquitto_sub``.

Run by hand from the repository root::

    python3 bench/mqtt_ingest.py

or through ``python -m bench`` (which calls :func:`run`). Environment: ``BENCH_MESSAGES``
(default 200000), ``BENCH_RUNS`` (default 1; medians are shown), ``BENCH_DURABILITY``
(``power`` or ``process``, default ``power``), ``BENCH_PROFILE`` (a file: write a cProfile of
the last MQTT 3.1.1 backlog drain there).

Backlog cases: N QoS 1 messages of 200 bytes of JSON, on three topics, are published into a
persistent session on a fresh mosquitto, then drained: by ``mosquitto_sub -q 1 -c -C N`` (the
baseline), by MqttSource over MQTT 5 and over 3.1.1 (every message mapped, validated, committed
with fsync, PUBACKed after COMMIT), and by bare paho clients that only count and ack (its own
network thread vs driven by asyncio, the choice MqttSource makes). Live cases: the receiver is
subscribed while mosquitto_pub publishes. Figures move between machines and with load: compare
ratios from one run. CPU is the benchmark process's user+system time per message.
"""

from __future__ import annotations

import asyncio
import cProfile
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.mqtt.config import MqttConfig, MqttSubscription
from agent.sources.mqtt.source import MqttSource
from tests.fixtures.mosquitto import Mosquitto, running_mosquitto

TOPICS = ("plant/line1/produced", "plant/line2/produced", "plant/line3/produced")
FILTER = "plant/+/produced"
PAYLOAD_BYTES = 200
#: mosquitto_pub -l wraps its 16-bit message id after 65,535 messages and stops silently.
PUB_CHUNK = 50_000
CLIENT_ID = "bench-receiver"

Durability = Literal["power", "process"]
Result = tuple[float, float | None]  # seconds, CPU seconds of this process (None: not measured)


def payload(i: int) -> bytes:
    """A 200-byte production report with a unique msg_id."""
    head = f'{{"order":"WH/MO/{i % 977:05d}","qty":1,"msg_id":"m{i:09d}","pad":"'
    return (head + "x" * (PAYLOAD_BYTES - len(head) - 2) + '"}').encode()


def publish(broker: Mosquitto, count: int) -> None:
    """Publish ``count`` QoS 1 messages over TOPICS, one mosquitto_pub series per topic."""
    with ThreadPoolExecutor(len(TOPICS)) as pool:
        jobs = [
            pool.submit(publish_topic, broker, topic, range(t, count, len(TOPICS)))
            for t, topic in enumerate(TOPICS)
        ]
        for job in jobs:
            job.result()


def publish_topic(broker: Mosquitto, topic: str, indices: range) -> None:
    for off in range(0, len(indices), PUB_CHUNK):
        lines = b"".join(payload(i) + b"\n" for i in indices[off : off + PUB_CHUNK])
        cmd = ["mosquitto_pub", "-h", broker.host, "-p", str(broker.port), "-q", "1"]
        subprocess.run([*cmd, "-t", topic, "-l"], input=lines, check=True)


def sub_command(broker: Mosquitto, protocol: str, *extra: str) -> list[str]:
    version = ["-V", "mqttv5", "-x", "3600"] if protocol == "5" else ["-V", "mqttv311"]
    return [
        *("mosquitto_sub", "-h", broker.host, "-p", str(broker.port), *version),
        *("-c", "-i", CLIENT_ID, "-q", "1", "-t", FILTER, *extra),
    ]


def make_session(broker: Mosquitto, protocol: str) -> None:
    """Create the receiver's persistent session, subscribed to FILTER, then leave."""
    subprocess.run(sub_command(broker, protocol, "-E"), check=True)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# ----------------------------------------------------------------------------- receivers


def drain_mosquitto_sub(broker: Mosquitto, count: int, during: Callable[[], None] | None) -> Result:
    started = time.perf_counter()
    proc = subprocess.Popen(sub_command(broker, "5", "-C", str(count)), stdout=subprocess.DEVNULL)
    if during is not None:
        during()
    if proc.wait(timeout=900) != 0:
        raise RuntimeError("mosquitto_sub failed")
    return time.perf_counter() - started, None


def agent_config(broker: Mosquitto, protocol: Any) -> MqttConfig:
    rule = MqttSubscription(
        topic=FILTER,
        qos=1,
        event="production.reported",
        fields={"order": "/order", "qty": "/qty"},
        dedupe_key="/msg_id",
    )
    return MqttConfig(host=broker.host, port=broker.port, protocol=protocol, subscriptions=(rule,))


async def _run_source(
    broker: Mosquitto,
    state: Path,
    protocol: str,
    durability: Durability,
    count: int,
    during: Callable[[], None] | None,
) -> Result:
    queue = await QueueStore.open(
        state / "queue.db", "gw-bench", QueueConfig(durability=durability)
    )
    source = MqttSource(agent_config(broker, protocol), queue, CLIENT_ID)
    cpu0 = cpu_seconds()
    started = time.perf_counter()
    task = asyncio.create_task(source.run())
    publisher = asyncio.create_task(asyncio.to_thread(during)) if during else None
    try:
        while True:
            stats = source.stats()
            if stats.queued + stats.duplicates + stats.rejected >= count and stats.unacked == 0:
                break
            if task.done():
                task.result()
            await asyncio.sleep(0.005)
        elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
        if stats.queued != count:
            raise RuntimeError(f"expected {count} queued: {stats}")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if publisher is not None:
            await publisher
        await queue.close()
    return elapsed, cpu


def drain_source(
    protocol: str, durability: Durability, profile: str | None = None
) -> Callable[..., Result]:
    def drain(broker: Mosquitto, count: int, during: Callable[[], None] | None) -> Result:
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        with tempfile.TemporaryDirectory(prefix="mqtt-bench-queue-") as state:
            result = asyncio.run(
                _run_source(broker, Path(state), protocol, durability, count, during)
            )
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
        return result

    return drain


def drain_paho(threaded: bool) -> Callable[..., Result]:
    """A bare paho 3.1.1 client with manual acks that counts and acks each message."""

    def drain(broker: Mosquitto, count: int, during: Callable[[], None] | None) -> Result:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=CLIENT_ID,
            clean_session=False,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        received = 0
        done = threading.Event()

        def on_message(c: paho.Client, _u: Any, m: paho.MQTTMessage) -> None:
            nonlocal received
            received += 1
            c.ack(m.mid, m.qos)
            if received >= count:
                done.set()

        client.on_message = on_message
        cpu0, started = cpu_seconds(), time.perf_counter()
        client.connect(broker.host, broker.port)
        if threaded:
            client.loop_start()
            if during is not None:
                during()
            done.wait(900)
            elapsed, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
            client.disconnect()
            client.loop_stop()
        else:
            elapsed, cpu = asyncio.run(_paho_on_asyncio(client, done, during))
            elapsed, cpu = elapsed - started, cpu - cpu0
        return elapsed, cpu

    return drain


async def _paho_on_asyncio(
    client: paho.Client, done: threading.Event, during: Callable[[], None] | None
) -> tuple[float, float]:
    loop = asyncio.get_running_loop()
    sock = cast(socket.socket, client.socket())

    def readable() -> None:
        for _ in range(1000):
            if client.loop_read() or done.is_set():
                break

    loop.add_reader(sock, readable)

    def register_write(*_: object) -> None:
        loop.call_soon(client.loop_write)

    client.on_socket_register_write = register_write
    client.loop_write()
    publisher = asyncio.create_task(asyncio.to_thread(during)) if during else None
    while not done.is_set():
        await asyncio.sleep(0.005)
        client.loop_misc()
    result = time.perf_counter(), cpu_seconds()
    loop.remove_reader(sock)
    if publisher is not None:
        await publisher
    return result


# ------------------------------------------------------------------------------- cases

Drain = Callable[[Mosquitto, int, Callable[[], None] | None], Result]


def backlog(drain: Drain, protocol: str, count: int, tmp: Path) -> Result:
    with running_mosquitto(tmp) as broker:
        make_session(broker, protocol)
        publish(broker, count)
        return drain(broker, count, None)


def live(drain: Drain, protocol: str, count: int, tmp: Path) -> Result:
    with running_mosquitto(tmp) as broker:
        make_session(broker, protocol)
        return drain(broker, count, lambda: publish(broker, count))


def publish_alone(count: int, tmp: Path) -> Result:
    with running_mosquitto(tmp) as broker:
        started = time.perf_counter()
        publish(broker, count)
        return time.perf_counter() - started, None


Case = Callable[[int, Path], Result]


def all_cases(durability: Durability, profile: str | None) -> dict[str, Case]:
    """Every case by name; ``profile`` gets a cProfile of the MQTT 3.1.1 backlog drain."""
    return {
        "backlog: mosquitto_sub -q 1 -c": lambda n, t: backlog(drain_mosquitto_sub, "5", n, t),
        "backlog: MqttSource -> QueueStore, MQTT 5": lambda n, t: backlog(
            drain_source("5", durability), "5", n, t
        ),
        "backlog: MqttSource -> QueueStore, MQTT 3.1.1": lambda n, t: backlog(
            drain_source("3.1.1", durability, profile), "3.1.1", n, t
        ),
        "backlog: paho thread, count+ack only": lambda n, t: backlog(
            drain_paho(True), "3.1.1", n, t
        ),
        "backlog: paho on asyncio, count+ack only": lambda n, t: backlog(
            drain_paho(False), "3.1.1", n, t
        ),
        "live: mosquitto_pub alone (no subscriber)": publish_alone,
        "live: mosquitto_sub -q 1 -c": lambda n, t: live(drain_mosquitto_sub, "5", n, t),
        "live: MqttSource -> QueueStore, MQTT 5": lambda n, t: live(
            drain_source("5", durability), "5", n, t
        ),
        "live: MqttSource -> QueueStore, MQTT 3.1.1": lambda n, t: live(
            drain_source("3.1.1", durability), "3.1.1", n, t
        ),
    }


def run(
    messages: int = 200_000,
    runs: int = 1,
    durability: Durability = "power",
    profile: str | None = None,
    only: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the cases (``only``: those whose names start with one of these), print the table.

    Returns per case: median seconds, msg/s, ratio to mosquitto_sub in the same mode (backlog or
    live; None for mosquitto_sub's own rows and cases without it), CPU µs per message.
    """
    cases = {
        name: case
        for name, case in all_cases(durability, profile).items()
        if only is None or name.startswith(tuple(only))
    }
    seconds: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    for _ in range(runs):
        for name, case in cases.items():
            with tempfile.TemporaryDirectory(prefix="mqtt-bench-") as tmp:
                elapsed, used = case(messages, Path(tmp))
            seconds.setdefault(name, []).append(elapsed)
            if used is not None:
                cpu.setdefault(name, []).append(used)
            print(f"  {name}: {messages / elapsed:,.0f} msg/s", file=sys.stderr)
    print(
        f"\nMQTT QoS 1 ingest, {messages:,} x {PAYLOAD_BYTES} B on {len(TOPICS)} topics, queue "
        f"durability={durability}, median of {runs} run(s), {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'case':<48} {'seconds':>8} {'msg/s':>9} {'ratio':>6} {'CPU us/msg':>10}")
    baseline: dict[str, float] = {}
    result: dict[str, Any] = {"messages": messages, "durability": durability, "cases": {}}
    for name, values in seconds.items():
        median = statistics.median(values)
        rate = messages / median
        kind = name.split(":")[0]
        if "mosquitto_sub" in name:
            baseline[kind] = rate
        ratio = rate / baseline[kind] if kind in baseline and "mosquitto_sub" not in name else None
        per_msg = statistics.median(cpu[name]) / messages * 1e6 if name in cpu else None
        result["cases"][name] = {
            "seconds": median,
            "rate": rate,
            "baseline_rate": baseline.get(kind),
            "ratio": ratio,
            "cpu_us": per_msg,
        }
        shown_ratio = f"{rate / baseline[kind]:.2f}" if kind in baseline else ""
        shown_cpu = f"{per_msg:.1f}" if per_msg is not None else ""
        print(f"{name:<48} {median:>8.2f} {rate:>9,.0f} {shown_ratio:>6} {shown_cpu:>10}")
    print("ratio: msg/s against mosquitto_sub in the same mode; CPU: this process only")
    return result


def main() -> None:
    durability: Durability = (
        "process" if os.environ.get("BENCH_DURABILITY") == "process" else "power"
    )
    run(
        messages=int(os.environ.get("BENCH_MESSAGES", "200000")),
        runs=int(os.environ.get("BENCH_RUNS", "1")),
        durability=durability,
        profile=os.environ.get("BENCH_PROFILE"),
    )


if __name__ == "__main__":
    main()
