"""RFC 6901 JSON Pointers, compiled once and resolved per message (the sources' hot path).

A small resolver instead of the ``jsonpointer`` package: it is about ten times faster per
lookup here, and sources only ever need "what is at this pointer, if anything".
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final

__all__ = ["MISSING", "JsonPointer", "PointerSyntaxError", "compile_pointer"]

_INDEX = re.compile(r"0|[1-9][0-9]*")
_BAD_ESCAPE = re.compile(r"~(?![01])")


class _Missing:
    """The value of a pointer that points at nothing in the document."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()


class PointerSyntaxError(ValueError):
    """A string that is not a JSON Pointer (RFC 6901)."""


def _unescape(token: str) -> str:
    return token.replace("~1", "/").replace("~0", "~") if "~" in token else token


class JsonPointer:
    """A parsed JSON Pointer; :meth:`get` returns what it points at, or :data:`MISSING`."""

    __slots__ = ("_first", "_single", "_steps", "text", "tokens")

    def __init__(self, text: str) -> None:
        if text and not text.startswith("/"):
            raise PointerSyntaxError(
                f"{text!r} is not a JSON Pointer (RFC 6901): it must start with '/'"
            )
        if _BAD_ESCAPE.search(text):
            raise PointerSyntaxError(
                f"{text!r} is not a JSON Pointer (RFC 6901): '~' must be '~0' or '~1'"
            )
        self.text = text
        self.tokens: tuple[str, ...] = (
            tuple(_unescape(t) for t in text[1:].split("/")) if text else ()
        )
        # Each step carries the token and, when it is a valid array index, that index.
        self._steps = tuple((t, int(t) if _INDEX.fullmatch(t) else None) for t in self.tokens)
        self._single = len(self.tokens) == 1
        self._first = self.tokens[0] if self.tokens else ""

    def get(self, document: Any) -> Any:
        """The value at this pointer in ``document``, or :data:`MISSING` if there is none."""
        if self._single and type(document) is dict:
            return document.get(self._first, MISSING)
        value = document
        for token, index in self._steps:
            if isinstance(value, dict):
                value = value.get(token, MISSING)
                if value is MISSING:
                    return MISSING
            elif isinstance(value, list):
                if index is None or index >= len(value):
                    return MISSING
                value = value[index]
            else:
                return MISSING
        return value

    def __repr__(self) -> str:
        return f"JsonPointer({self.text!r})"

    def __str__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, JsonPointer) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


@lru_cache(maxsize=1024)
def compile_pointer(text: str) -> JsonPointer:
    """A shared compiled :class:`JsonPointer` for ``text``."""
    return JsonPointer(text)
