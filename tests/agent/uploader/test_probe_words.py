"""The words of a probe's verdict for answers that are awkward to bring about for real (a
gateway clock an hour off, a relay that is not ready)."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.uploader.probe import judge
from wire.probe import ProbeAnswer

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def verdict(status: int, answer: ProbeAnswer | None, skew: float | None = None) -> tuple[str, str]:
    check = judge(
        status,
        answer,
        url="https://relay.example/v1/probe",
        gateway_id="gw-1",
        key_id="KID",
        skew_seconds=skew,
        at=NOW,
    )
    return check.state, check.words


def test_a_stale_signature_is_a_clock_to_set_with_the_skew_in_seconds() -> None:
    stale = ProbeAnswer(time=NOW, error="signature created 3600 s ago", stale=True)
    assert verdict(401, stale, skew=3600.4) == (
        "clock_skew",
        "this gateway's clock is 3600 s behind the relay's, so the relay refuses its "
        "signatures as stale: set the clock (NTP)",
    )
    state, words = verdict(401, stale, skew=-900.0)
    assert state == "clock_skew" and "900 s ahead of the relay's" in words


def test_something_else_answering_is_a_wrong_url_and_a_5xx_is_not() -> None:
    state, words = verdict(200, None)
    assert state == "wrong_url"
    assert "https://relay.example/v1/probe answered 200 and is not a cloud relay" in words
    assert verdict(502, None)[0] == "unreachable"
    refused = ProbeAnswer(time=NOW, error="the inbox cannot be read right now")
    assert verdict(503, refused)[0] == "unreachable"


def test_a_revoked_key_says_so() -> None:
    revoked = ProbeAnswer(time=NOW, key="revoked", key_id="KID", error="key KID is revoked")
    assert verdict(403, revoked) == (
        "key_refused",
        "the relay has revoked this gateway's key KID: register a new one",
    )
