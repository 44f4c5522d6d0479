"""Text that can always be encoded: what the agent stores or shows of what it received.

A JSON payload may spell a lone UTF-16 surrogate (``"\\ud800"``); it decodes to a Python string
that has no UTF-8 form, so SQLite cannot bind it and no page or log can print it. Such text is
kept with each of those code points written as ``\\udXXX`` instead.
"""

from __future__ import annotations

__all__ = ["has_utf8_form", "printable"]


def has_utf8_form(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (it holds no lone surrogate)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(text: str) -> str:
    """``text`` itself when it has a UTF-8 form; else with each lone surrogate escaped."""
    if text.isascii() or has_utf8_form(text):
        return text
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
