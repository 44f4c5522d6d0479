"""Durations read as a person says them, with whole units and no zero parts."""

from __future__ import annotations

import pytest

from runtime.durations import human_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.4, "under a second"),
        (4, "4 s"),
        (59.6, "1 min"),
        (182, "3 min 2 s"),
        (3600, "1 h"),
        (5 * 3600 + 12 * 60, "5 h 12 min"),
        (2 * 86400 + 3 * 3600, "2 d 3 h"),
        (86400, "1 d"),
    ],
)
def test_durations_in_words(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text
