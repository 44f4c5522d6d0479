"""Bounds on a batch body's JSON, so that parsing it costs what its size says.

A body may nest arrays and objects at most :data:`MAX_NESTING_DEPTH` deep and hold number
literals of at most :data:`MAX_NUMBER_CHARS` characters. A valid batch nests 3 deep (batch,
events, event, ``data`` of scalars) and its longest number is a 19-digit seq or a float's
24-character repr, so every body a gateway makes from valid events is far inside both. Both are
checked without recursion and before any number is converted; each refusal names the member.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from wire.errors import WireValidationError

#: Deepest nesting of arrays and objects in a batch body.
MAX_NESTING_DEPTH: Final = 8
#: Longest number literal in a batch body, sign, fraction and exponent included.
MAX_NUMBER_CHARS: Final = 40

_STRING = rb'"(?:[^"\\]|\\.)*"'
_JSON_STRING = re.compile(_STRING, re.DOTALL)
_TOKEN = re.compile(_STRING + rb"|[\[\]{},:]", re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_INNERMOST_PAIRS = re.compile(rb"\[\]|\{\}")


class _TooLong:
    """Stands for a number literal past the bound until its member is found."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def check_depth(body: bytes) -> None:
    """Raise :class:`WireValidationError` naming the member where ``body`` nests too deep."""
    skeleton = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for _ in range(MAX_NESTING_DEPTH):
        if not skeleton:
            return
        # Each round removes every innermost pair, so lowers every subtree by one level.
        skeleton = _INNERMOST_PAIRS.sub(b"", skeleton)
    if not skeleton:
        return
    location = _too_deep_at(body)
    if location is None:
        return  # unbalanced, not deep: the JSON parser names the syntax error
    raise WireValidationError(
        location, f"nests arrays and objects deeper than {MAX_NESTING_DEPTH} levels"
    )


def _too_deep_at(body: bytes) -> str | None:
    """The JSON Pointer of the member that opens the level past the bound (a rare path)."""
    # Each level: [is_object, key or index, expecting a key].
    stack: list[list[Any]] = []
    for match in _TOKEN.finditer(body):
        token = match.group()
        top = stack[-1] if stack else None
        if token in (b"[", b"{"):
            if len(stack) == MAX_NESTING_DEPTH:
                return "".join("/" + _escape(str(level[1])) for level in stack)
            stack.append([token == b"{", 0 if token == b"[" else "", token == b"{"])
        elif token in (b"]", b"}"):
            if stack:
                stack.pop()
        elif top is None:
            continue
        elif token == b",":
            if top[0]:
                top[2] = True
            else:
                top[1] += 1
        elif token == b":":
            top[2] = False
        elif top[0] and top[2]:
            try:
                top[1] = json.loads(token)
            except ValueError:
                top[1] = token.decode("utf-8", "replace")[1:-1]
    return None


def loads(text: str, **hooks: Any) -> Any:
    """``json.loads`` with number literals bounded; raises :class:`WireValidationError`
    naming the first member holding a longer one. Call :func:`check_depth` first."""
    too_long: list[_TooLong] = []

    def number(convert: Any) -> Any:
        def parse(literal: str) -> Any:
            if len(literal) <= MAX_NUMBER_CHARS:
                return convert(literal)
            too_long.append(_TooLong(literal))
            return too_long[-1]

        return parse

    value = json.loads(text, parse_int=number(int), parse_float=number(float), **hooks)
    if too_long:
        location, literal = _find_too_long(value, "")
        raise WireValidationError(
            location,
            f"number literal of {len(literal)} characters is longer than the"
            f" {MAX_NUMBER_CHARS} allowed ({literal[:20]}...)",
        )
    return value


def _find_too_long(value: Any, location: str) -> tuple[str, str]:
    pending: list[tuple[Any, str]] = [(value, location)]
    while pending:
        item, where = pending.pop()
        if isinstance(item, _TooLong):
            return where, item.text
        if isinstance(item, dict):
            pending.extend((v, f"{where}/{_escape(k)}") for k, v in reversed(item.items()))
        elif isinstance(item, list):
            pending.extend((v, f"{where}/{i}") for i, v in reversed(list(enumerate(item))))
    return location, ""  # unreachable: the parser made the placeholder part of the value


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")
