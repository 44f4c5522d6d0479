"""The figures the page words from the components' own stats: drain time, clock skew, ages.

The page itself is read in a real browser by ``test_page_in_browser.py``; these pin the words
for states that are slow or awkward to bring about for real (a long backlog draining, a clock
minutes off, an OPC UA server down for hours).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from agent.health.page import render_page
from agent.health.status import assess
from agent.queue.model import QueueStats
from agent.sources.opcua.source import OpcuaStats
from agent.uploader.relay_client import clock_skew_seconds
from agent.uploader.stats import AckRate, UploaderStats

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

QUEUE = QueueStats(
    pending=100,
    first_seq=901,
    last_seq=1000,
    acked_seq=900,
    bytes=3 * 1024 * 1024,
    max_bytes=1024**3,
    oldest_age_seconds=185.0,
    full=False,
    rejected=0,
    shed=0,
    duplicates=0,
    enqueued_total=1000,
    commits_total=40,
)
UPLINK = UploaderStats(
    acked_seq=900,
    in_flight=None,
    last_success_at=NOW - timedelta(seconds=2),
    last_error=None,
    last_error_at=None,
    alarm=None,
    batches_sent=9,
    events_sent=900,
    bytes_sent=50_000,
    retries=0,
    relay_acked_seq=900,
    backoff_seconds=0.0,
    batch_max_events=1000,
    link_up=True,
    ack_rate_per_second=2.0,
    relay_clock_skew_seconds=0.3,
)
OPCUA = OpcuaStats(
    connected=False,
    since=NOW - timedelta(hours=2, minutes=5),
    endpoint="opc.tcp://plc1:4840",
    last_value_at=NOW - timedelta(hours=2, minutes=6),
    notifications=10,
    events_queued=5,
    overflows=0,
    rejected=2,
    last_reject="ns=2;s=Qty: value -1 is below 0",
    reconnects=3,
    last_error="cannot connect to opc.tcp://plc1:4840: connection refused",
    current_order=None,
    resyncs=0,
    buffered=0,
    held_qty=0,
    subscribed_nodes=0,
    applied=0,
)


class _Cards(HTMLParser):
    """Row label -> cell text of every card, the way the browser test reads them."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, dict[str, str]] = {}
        self._card = self._cell = ""
        self._label: str | None = None
        self._nested = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self._card = dict(attrs).get("id") or ""
            self.cards[self._card] = {}
        elif tag in ("th", "td"):
            self._cell, self._nested = "", 0
        elif tag == "meter":
            self._nested += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "th":
            self._label = self._cell
        elif tag == "td" and self._label is not None and self._card:
            self.cards[self._card][self._label] = self._cell.strip()
            self._label = None
        elif tag == "meter":
            self._nested -= 1
        elif tag == "section":
            self._card = ""

    def handle_data(self, data: str) -> None:
        if not self._nested:
            self._cell += data


def cards(**stats: object) -> dict[str, dict[str, str]]:
    health = assess(stats)
    parser = _Cards()
    parser.feed(render_page(health, stats, {"gateway_id": "gw-1"}, NOW))
    return parser.cards


def test_time_to_drain_is_pending_over_the_recent_ack_rate() -> None:
    uplink = cards(queue=QUEUE, uploader=UPLINK)["uplink"]
    assert uplink["Time to drain"] == "about 50 s at 2 events/s"
    assert (
        cards(queue=QUEUE, uploader=replace(UPLINK, ack_rate_per_second=0.01))["uplink"][
            "Time to drain"
        ]
        == "about 2 h 46 min at 0.01 events/s"
    )


def test_no_drain_promise_without_recent_acknowledgements() -> None:
    uplink = cards(queue=QUEUE, uploader=replace(UPLINK, ack_rate_per_second=None))["uplink"]
    assert uplink["Time to drain"] == "unknown: no acknowledgements lately"


def test_queue_figures_in_words() -> None:
    queue = cards(queue=QUEUE)["queue"]
    assert queue == {
        "Pending events": "100 (seq 901..1000)",
        "Oldest event": "waiting 3 min 5 s",
        "Space used": "3.0 MiB of 1.0 GiB (0%)",
        "Overflow": "not full",
    }
    shedding = cards(queue=replace(QUEUE, shed=12))["queue"]
    assert shedding["Overflow"] == "not full; 12 telemetry events dropped to make room"


@pytest.mark.parametrize(
    ("skew", "words"),
    [
        (None, "unknown until the relay answers"),
        (0.3, "in step (within about a second)"),
        (-4.2, "the relay's clock is 4 s behind"),
        (125.0, "the relay's clock is 2 min 5 s ahead"),
    ],
)
def test_clock_skew_in_words(skew: float | None, words: str) -> None:
    uplink = replace(UPLINK, relay_clock_skew_seconds=skew)
    assert cards(queue=QUEUE, uploader=uplink)["uplink"]["Clock vs relay"] == words


def test_a_clock_a_minute_off_turns_the_verdict_amber() -> None:
    health = assess({"uploader": replace(UPLINK, relay_clock_skew_seconds=125.0)})
    assert health.status == "amber"
    assert health.reasons == (
        "this gateway's clock is 125 s behind the relay's; past 300 s the relay refuses its "
        "signatures",
    )
    assert assess({"uploader": replace(UPLINK, relay_clock_skew_seconds=-30.0)}).status == "green"


def test_opcua_source_down_for_hours() -> None:
    source = cards(opcua=OPCUA)["source-opcua"]
    assert source == {
        "Connection": "not connected since 2026-03-01 09:55:00 UTC (2 h 5 min ago)",
        "Why": "cannot connect to opc.tcp://plc1:4840: connection refused",
        "Last value": "2026-03-01 09:54:00 UTC (2 h 6 min ago)",
        "Rejected": (
            "2; the last: ns=2;s=Qty: value -1 is below 0 (edge-agent rejects lists them)"
        ),
    }


def test_ack_rate_counts_recent_acknowledgements_up_to_now() -> None:
    clock = [0.0]
    rate = AckRate(window_seconds=60, clock=lambda: clock[0])
    assert rate.per_second() is None
    rate.record(100)
    assert rate.per_second() is None
    clock[0] = 10.0
    rate.record(300)
    assert rate.per_second() == pytest.approx(20.0)
    clock[0] = 20.0  # nothing acknowledged for ten seconds: the rate falls
    assert rate.per_second() == pytest.approx(10.0)
    clock[0] = 65.0  # the first acknowledgement left the window
    assert rate.per_second() is None


def test_clock_skew_from_the_date_header() -> None:
    date = "Sun, 01 Mar 2026 12:02:00 GMT"
    sent = NOW.timestamp()
    assert clock_skew_seconds(date, sent, sent + 1.0) == pytest.approx(120.0)
    assert clock_skew_seconds(None, sent, sent) is None
    assert clock_skew_seconds("not a date", sent, sent) is None
