"""Timestamps as SQLite stores them: RFC 3339 text in UTC with microseconds, so they sort as
text and read well in the ``sqlite3`` shell during an audit."""

from __future__ import annotations

from datetime import UTC, datetime


def format_utc(value: datetime) -> str:
    """``value`` in UTC as RFC 3339 text with microseconds (``...T06:00:00.001000+00:00``)."""
    # Once per stored event: isoformat without ``timespec`` and no astimezone for a time that
    # is UTC already cost a quarter less.
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    text = value.isoformat()
    return text if value.microsecond else text[:-6] + ".000000+00:00"


def parse_utc(value: str | None) -> datetime | None:
    """The time written by :func:`format_utc`, or None for NULL."""
    return None if value is None else datetime.fromisoformat(value)
