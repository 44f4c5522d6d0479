"""The link check a gateway makes before it has anything to send: ``GET /v1/probe``.

The request is signed exactly like a batch upload (RFC 9421 over ``@method``, ``@target-uri``
and the ``Content-Digest`` of the empty body, with ``created``), so a probe proves the same
things an upload would: the URL reaches a relay, the key is registered and not revoked, and the
two clocks are close enough for the signature to be fresh. Answers, all JSON with the relay's
clock as ``time`` (RFC 3339 UTC) so the gateway can work out the skew:

- 200 ``{"gateway_id", "key_id", "key": "registered", "acked_seq", "time"}``: the gateway the
  key is registered to and the highest contiguous seq the relay has stored for it;
- 401 ``{"error", "time"}``: a bad or stale signature (``"stale": true`` when only the clock is
  wrong);
- 403 ``{"error", "key": "unknown" | "revoked", "key_id", "time"}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from wire.events import format_timestamp

PROBE_PATH: Final = "/v1/probe"

KeyState = Literal["registered", "unknown", "revoked"]


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """What the relay said to a probe (any of its answers)."""

    time: datetime | None
    """The relay's clock when it answered."""
    key: KeyState | None = None
    gateway_id: str | None = None
    """The gateway the signing key is registered to."""
    key_id: str | None = None
    acked_seq: int | None = None
    error: str | None = None
    stale: bool = False
    """The signature was refused only for its age: the clocks differ too much."""


def probe_body(
    now: datetime,
    *,
    key: KeyState | None = None,
    gateway_id: str | None = None,
    key_id: str | None = None,
    acked_seq: int | None = None,
    error: str | None = None,
    stale: bool = False,
) -> dict[str, Any]:
    """The JSON body of a probe answer (fields that are None are left out)."""
    body: dict[str, Any] = {
        "gateway_id": gateway_id,
        "key_id": key_id,
        "key": key,
        "acked_seq": acked_seq,
        "error": error,
    }
    body = {name: value for name, value in body.items() if value is not None}
    if stale:
        body["stale"] = True
    body["time"] = format_timestamp(now)
    return body


def parse_probe_answer(body: Any) -> ProbeAnswer | None:
    """A probe answer from decoded JSON, or None if it is not one (another server answered)."""
    if not isinstance(body, dict) or not isinstance(body.get("time"), str):
        return None
    try:
        when = datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
    except ValueError:
        return None
    key = body.get("key")
    acked = body.get("acked_seq")
    return ProbeAnswer(
        time=when if when.tzinfo is not None else when.replace(tzinfo=UTC),
        key=key if key in ("registered", "unknown", "revoked") else None,
        gateway_id=_text(body.get("gateway_id")),
        key_id=_text(body.get("key_id")),
        acked_seq=acked if isinstance(acked, int) and not isinstance(acked, bool) else None,
        error=_text(body.get("error")),
        stale=body.get("stale") is True,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
