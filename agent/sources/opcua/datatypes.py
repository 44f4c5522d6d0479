"""What a node's OPC UA data type tells the rules: where a counter wraps, what a state reads as."""

from __future__ import annotations

import re

from agent.sources.opcua.config import OpcuaNodeRule

#: The highest value of each OPC UA unsigned integer type: a counter node's wrap point.
UNSIGNED_MAX = {"Byte": 2**8 - 1, "UInt16": 2**16 - 1, "UInt32": 2**32 - 1, "UInt64": 2**64 - 1}
_INTEGER_TYPES = frozenset({"SByte", "Int16", "Int32", "Int64", *UNSIGNED_MAX})
_NUMBER_TYPES = _INTEGER_TYPES | {"Float", "Double"}
_DECIMAL = re.compile(r"-?[0-9]+")


def state_keys_problem(rule: OpcuaNodeRule, kind: str) -> str | None:
    """Why some ``states`` keys can never match a value of data type ``kind``, or None."""
    if kind == "Boolean":
        wrong = [k for k in rule.states if k not in ("true", "false")]
        form = "a Boolean node reads as true or false"
    elif kind in _NUMBER_TYPES:
        wrong = [k for k in rule.states if not _DECIMAL.fullmatch(k)]
        form = f"a {kind} node reads as a decimal integer (2, -1)"
    else:
        return None
    if not wrong:
        return None
    return f"states keys {', '.join(repr(k) for k in wrong)} can never match: {form}"
