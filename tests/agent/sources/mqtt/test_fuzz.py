"""Fuzzing the MQTT source through a real mosquitto: bad payloads between valid ones.

Each example publishes a stream where valid production reports (unique ``msg_id``, unique
``lot``) are interleaved with malformed, invalid UTF-8, surrogate, deeply nested, huge and
wrongly typed payloads. Every valid message must be queued exactly once, every bad one must be a
counted, kept reject, and the source must keep its one connection throughout.

Sizes: ``MQTT_FUZZ_EXAMPLES`` (default 8) streams of up to ``MQTT_FUZZ_MESSAGES`` (default 60)
messages; huge payloads up to ``MQTT_FUZZ_HUGE_BYTES`` (default 256 KiB).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.sources.mqtt.source import MqttSource
from tests.agent.sources.mqtt.conftest import WAIT_SECONDS, mqtt_config, queued_events, wait_until
from tests.fixtures.mosquitto import Mosquitto, publish_qos1, running_mosquitto

EXAMPLES = int(os.environ.get("MQTT_FUZZ_EXAMPLES", "8"))
MESSAGES = int(os.environ.get("MQTT_FUZZ_MESSAGES", "60"))
HUGE_BYTES = int(os.environ.get("MQTT_FUZZ_HUGE_BYTES", str(256 * 1024)))

#: Text a valid payload may carry: anything with a UTF-8 form that a name keeps as it is.
_TEXT = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=40,
)
_SURROGATE = st.integers(0xD800, 0xDFFF).map(lambda n: f"\\u{n:04x}")


def _doc(msg_id: str, order: str = '"WH/MO/1"', qty: str = "1", lot: str = '"L"') -> bytes:
    """A payload spelled as JSON text, so that any field can hold any raw spelling."""
    return f'{{"msg_id": {msg_id}, "order": {order}, "qty": {qty}, "lot": {lot}}}'.encode()


@st.composite
def _surrogate_payload(draw: st.DrawFn) -> bytes:
    bad = f'"x{draw(_SURROGATE)}y"'
    where = draw(st.sampled_from(["msg_id", "order", "lot"]))
    fields = {"msg_id": '"b-s"', "order": '"MO"', "lot": '"L"', where: bad}
    return _doc(fields["msg_id"], fields["order"], "1", fields["lot"])


_MALFORMED = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b"", b"{", b"null", b"[]", b"1", b'"text"', b"{}", b'{"msg_id": }']),
    st.integers(1, 40).map(lambda cut: _doc('"b-m"')[:cut]),
)
_INVALID_UTF8 = st.sampled_from(
    [b"\xff\xfe", b"\xed\xa0\x80", b"\xc0\xaf", b"\xf5\x80\x80\x80", b"\x80", b"\xe2\x82"]
).map(lambda raw: b'{"msg_id": "b-u", "order": "MO' + raw + b'", "qty": 1, "lot": "L"}')
_DEEP = st.integers(100, 200_000).flatmap(
    lambda depth: st.sampled_from(
        [
            b"[" * depth + b"]" * depth,
            b'{"a":' * depth + b"1" + b"}" * depth,
            _doc('"b-d"', order=("[" * min(depth, 900) + "]" * min(depth, 900))),
        ]
    )
)
_HUGE = st.integers(1024, max(1024, HUGE_BYTES)).flatmap(
    lambda size: st.sampled_from(
        [
            _doc('"b-h"', order=json.dumps("O" * size)),
            _doc('"b-h"', qty="9" * min(size, 20_000)),
            _doc('"b-h"', lot=json.dumps("L" * size)),
            b"[" + b"0," * (size // 2) + b"0]",
        ]
    )
)
_WRONG = st.sampled_from(
    [
        _doc('"b-w"', qty="0"),
        _doc('"b-w"', qty="-1"),
        _doc('"b-w"', qty='"one"'),
        _doc('"b-w"', qty="true"),
        _doc('"b-w"', qty="null"),
        _doc('"b-w"', qty="NaN"),
        _doc('"b-w"', qty="Infinity"),
        _doc('"b-w"', qty="1e999"),
        _doc('"b-w"', order="7"),
        _doc('"b-w"', order='"   "'),
        _doc('"b-w"', order="{}"),
        _doc('""'),
        _doc("true"),
        _doc("null"),
        _doc("{}"),
        _doc("[1]"),
        b'{"order": "MO", "qty": 1}',
    ]
)
BAD = st.one_of(_surrogate_payload(), _MALFORMED, _INVALID_UTF8, _DEEP, _HUGE, _WRONG)
_STREAMS = itertools.count(1)
#: A stream: text stands for a valid message (carrying it), bytes are a bad payload.
STREAM = st.lists(st.one_of(_TEXT, BAD), min_size=1, max_size=MESSAGES)


@pytest.fixture(scope="module")
def broker() -> Iterator[Mosquitto]:
    with (
        tempfile.TemporaryDirectory(prefix="mqtt-fuzz-") as directory,
        running_mosquitto(Path(directory) / "mosquitto") as running,
    ):
        yield running


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=STREAM)
def test_bad_payloads_are_rejects_and_valid_ones_are_queued_once(
    broker: Mosquitto, stream: list[str | bytes]
) -> None:
    asyncio.run(_run_stream(broker, stream))


async def _run_stream(broker: Mosquitto, stream: list[str | bytes]) -> None:
    n = next(_STREAMS)
    topic = f"plant/fuzz{n}/produced"
    sub = (
        mqtt_config(broker)
        .subscriptions[0]
        .model_copy(
            update={"topic": topic, "fields": {"order": "/order", "qty": "/qty", "lot": "/lot"}}
        )
    )
    messages: list[tuple[str, bytes]] = []
    lots: Counter[str] = Counter()
    for i, item in enumerate(stream):
        if isinstance(item, bytes):
            messages.append((topic, item))
        else:
            lot = f"{i}-{item}"
            lots[lot] += 1
            body = {"msg_id": f"v-{i}", "order": f"WH/MO/{item}", "qty": i + 1, "lot": lot}
            messages.append((topic, json.dumps(body, ensure_ascii=i % 2 == 0).encode()))
    bad = len(messages) - sum(lots.values())
    with tempfile.TemporaryDirectory(prefix="mqtt-fuzz-queue-") as directory:
        queue = await QueueStore.open(Path(directory) / "q.db", "gw-fuzz", QueueConfig())
        try:
            source = MqttSource(mqtt_config(broker, sub), queue, f"edge-fuzz-{n}")
            task = asyncio.create_task(source.run())
            try:
                await wait_until(
                    lambda: source.stats().connected or task.done(), "the source to connect"
                )
                acked = await asyncio.to_thread(publish_qos1, broker.host, broker.port, messages)
                assert acked == len(messages)
                await wait_until(
                    lambda: (
                        task.done()
                        or source.stats().queued + source.stats().rejected >= len(messages)
                    ),
                    "every message queued or rejected",
                    seconds=WAIT_SECONDS * 3,
                )
                assert not task.done(), f"the source stopped: {task.exception()!r}"
                stats = source.stats()
                assert stats.reconnects == 0, stats.last_error
                assert (stats.received, stats.queued, stats.rejected) == (
                    len(messages),
                    sum(lots.values()),
                    bad,
                ), [r.reason for r in await queue.recent_rejects(5)]
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            queued = Counter(ev["data"]["lot"] for ev in await queued_events(queue))
            assert queued == lots
            assert queue.stats().rejected == bad
            rejects = await queue.recent_rejects(len(messages) + 1)
            assert len(rejects) == bad
            assert all(r.reason and r.reason.encode("utf-8") for r in rejects)
        finally:
            await queue.close()
