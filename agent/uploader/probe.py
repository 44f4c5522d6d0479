"""What a probe of the relay (``GET /v1/probe``) says about the link, in a person's words.

A probe runs at start and whenever the link has been quiet for ``[relay]
probe_interval_seconds``, so a wrong URL, an unregistered key or a clock that is off shows on
the health page before there is anything to upload.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from wire.probe import ProbeAnswer

LinkState = Literal[
    "ok", "unreachable", "wrong_url", "key_refused", "signature_refused", "clock_skew"
]

#: States a person has to fix (the URL, the key's registration, the clock); the rest may pass.
NEEDS_A_PERSON: frozenset[LinkState] = frozenset(
    {"wrong_url", "key_refused", "signature_refused", "clock_skew"}
)


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """The outcome of one probe."""

    state: LinkState
    words: str
    at: datetime
    acked_seq: int | None = None
    """The relay's highest contiguous stored seq for this gateway (``ok`` only)."""


def judge(
    status: int,
    answer: ProbeAnswer | None,
    *,
    url: str,
    gateway_id: str,
    key_id: str,
    skew_seconds: float | None,
    at: datetime,
) -> LinkCheck:
    """Sort the relay's answer to a probe of ``url`` into a :class:`LinkCheck`."""
    if answer is None:
        if status >= 500:
            return LinkCheck("unreachable", f"{url} answered {status}: the relay is not ready", at)
        return LinkCheck(
            "wrong_url",
            f"{url} answered {status} and is not a cloud relay: check [relay] url "
            "(the relay's base URL, http(s)://host[:port])",
            at,
        )
    if status == 200 and answer.key == "registered":
        if answer.gateway_id != gateway_id:
            return LinkCheck(
                "key_refused",
                f"the relay has this key ({key_id}) registered to gateway "
                f"{answer.gateway_id!r}, not {gateway_id!r}: fix [gateway] id or the "
                "registration",
                at,
            )
        return LinkCheck(
            "ok", "the relay answers and knows this gateway's key", at, acked_seq=answer.acked_seq
        )
    if status == 403 and answer.key == "revoked":
        return LinkCheck(
            "key_refused",
            f"the relay has revoked this gateway's key {key_id}: register a new one",
            at,
        )
    if status == 403:
        return LinkCheck(
            "key_refused",
            f"the relay does not know this gateway's key {key_id}: register it there with "
            f"`cloud-relay gateway add --id {gateway_id} --public-key <key>.pub`",
            at,
        )
    if status == 401 and answer.stale:
        return LinkCheck("clock_skew", _clock_words(skew_seconds, answer.error), at)
    if status == 401:
        return LinkCheck(
            "signature_refused", f"the relay rejected this gateway's signature: {answer.error}", at
        )
    if status >= 500:
        return LinkCheck(
            "unreachable", f"the relay cannot answer now ({status}): {answer.error}", at
        )
    return LinkCheck("wrong_url", f"{url} answered {status}: {answer.error or 'no reason'}", at)


def _clock_words(skew_seconds: float | None, error: str | None) -> str:
    if skew_seconds is None:
        return f"the relay refuses this gateway's signatures as stale: {error}"
    direction = "behind" if skew_seconds > 0 else "ahead of"
    return (
        f"this gateway's clock is {abs(skew_seconds):.0f} s {direction} the relay's, so the "
        "relay refuses its signatures as stale: set the clock (NTP)"
    )
