"""Canonical JSON: the one byte form of an event, so that equal events are equal bytes.

Keys sorted, no insignificant white space, UTF-8, no NaN or infinity. Events are encoded once,
at enqueue, and those bytes travel unchanged to the relay.
"""

from __future__ import annotations

import json
from typing import Any

_encoder = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def canonical_json(value: Any) -> bytes:
    """Encode ``value`` as canonical JSON bytes."""
    return _encoder.encode(value).encode("utf-8")
