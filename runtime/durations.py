"""Durations as a person says them, for health pages and status lines."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """A span as a person says it: ``4 s``, ``3 min 2 s``, ``5 h 12 min``, ``2 d 3 h``."""
    if seconds < 1:
        return "under a second"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
