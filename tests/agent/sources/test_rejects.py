"""A source's reject memory: the recent count behind the amber banner, and a calm log."""

from __future__ import annotations

import logging

import pytest

from agent.sources.rejects import LOG_EVERY_SECONDS, RECENT_SECONDS, RejectLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_is_logged_once_and_the_next_line_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    rejects = RejectLog("MQTT", logging.getLogger("test.rejects"), clock=clock)
    with caplog.at_level(logging.WARNING, "test.rejects"):
        for n in range(3):
            rejects.note("topic a/b", f"bad {n}")
        clock.now += LOG_EVERY_SECONDS + 1
        rejects.note("topic a/c", "worse")
    assert [r.getMessage() for r in caplog.records] == [
        "MQTT rejected a payload: topic a/b: bad 0",
        "MQTT rejected a payload: topic a/c: worse (and 2 more since the last report)",
    ]
    assert rejects.last == "topic a/c: worse"
    assert rejects.recent() == 4


def test_rejects_stop_counting_as_recent_after_the_window() -> None:
    clock = Clock()
    rejects = RejectLog("OPC UA", logging.getLogger("test.rejects"), clock=clock)
    rejects.note("node x", "negative")
    clock.now += RECENT_SECONDS / 2
    rejects.note("node x", "negative")
    clock.now += RECENT_SECONDS / 2 + 1
    assert rejects.recent() == 1
    clock.now += RECENT_SECONDS
    assert rejects.recent() == 0
    assert rejects.last_at is not None
