"""Green, amber or red, with the reasons in words, from the components' ``stats()``."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent.sources.rejects import RECENT_SECONDS
from agent.uploader.probe import NEEDS_A_PERSON
from wire.signing import DEFAULT_MAX_SKEW_SECONDS

Level = Literal["green", "amber", "red"]
_RANK: dict[Level, int] = {"green": 0, "amber": 1, "red": 2}

StatsProvider = Callable[[], Any]

#: Clock difference from the relay worth a warning, well before signatures turn stale.
CLOCK_SKEW_WARN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Health:
    """The verdict and why."""

    status: Level
    reasons: tuple[str, ...]


def _get(stats: Any, name: str, default: Any = None) -> Any:
    return getattr(stats, name, default)


def assess(components: Mapping[str, Any]) -> Health:
    """Judge the agent from a snapshot of each component's stats (keyed by component name)."""
    level: Level = "green"
    reasons: list[str] = []

    def flag(new: Level, reason: str) -> None:
        nonlocal level
        if _RANK[new] > _RANK[level]:
            level = new
        reasons.append(reason)

    queue = components.get("queue")
    if queue is not None:
        if _get(queue, "full"):
            why = _get(queue, "last_error") or "the byte limit is reached"
            flag("red", f"queue is full ({why}): sources are paused")
        elif _get(queue, "last_error"):
            flag("amber", f"queue: {_get(queue, 'last_error')}")
        if _get(queue, "moved_aside"):
            flag("red", f"a corrupt queue file was moved aside: {_get(queue, 'moved_aside')[-1]}")
    uploader = components.get("uploader")
    if uploader is not None:
        probe = _probe_news(uploader)
        if _get(uploader, "alarm"):
            flag("red", f"relay refuses uploads: {_get(uploader, 'alarm')}")
        elif probe is not None:
            flag(*probe)
        elif _get(uploader, "last_error") and not _link_recovered(uploader):
            flag("amber", f"relay unreachable: {_get(uploader, 'last_error')}")
        skew = _get(uploader, "relay_clock_skew_seconds")
        if skew is not None and abs(skew) >= CLOCK_SKEW_WARN_SECONDS:
            flag(
                "amber",
                f"this gateway's clock is {abs(skew):.0f} s {'behind' if skew > 0 else 'ahead of'} "
                f"the relay's; past {DEFAULT_MAX_SKEW_SECONDS} s the relay refuses its signatures",
            )
    for name, stats in components.items():
        if name in ("queue", "uploader"):
            continue
        if _get(stats, "duplicate_client"):
            flag("red", f"{name} source: {_get(stats, 'duplicate_client')}")
        elif not _get(stats, "connected", True):
            err = _get(stats, "last_error") or "not connected"
            flag("amber", f"{name} source is not connected: {err}")
        recent = _get(stats, "rejected_recently", 0)
        if recent:
            last = _get(stats, "last_reject") or "no reason kept"
            flag(
                "amber",
                f"{name} source rejected {recent} payload{'s' if recent != 1 else ''} in the "
                f"last {RECENT_SECONDS / 60:.0f} minutes; the last: {last}",
            )
    return Health(level, tuple(reasons) if reasons else ("all components healthy",))


def _probe_news(uploader: Any) -> tuple[Level, str] | None:
    """A failed probe's flag, when the probe is the latest word on the link (newer than any
    upload's outcome)."""
    state, at = _get(uploader, "link_check"), _get(uploader, "link_check_at")
    if state in (None, "ok") or at is None:
        return None
    for name in ("last_success_at", "last_error_at"):
        other = _get(uploader, name)
        if other is not None and other > at:
            return None
    words = _get(uploader, "link_check_words") or state
    if state in NEEDS_A_PERSON:
        return "red", f"relay link: {words}"
    return "amber", f"relay unreachable: {words}"


def _link_recovered(uploader: Any) -> bool:
    link_up = _get(uploader, "link_up")
    if link_up is not None:
        return bool(link_up)
    ok, err = _get(uploader, "last_success_at"), _get(uploader, "last_error_at")
    return ok is not None and err is not None and ok > err


def as_dict(stats: Any) -> dict[str, Any]:
    """A JSON-ready mapping of a stats dataclass."""
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return {k: _jsonable(v) for k, v in dataclasses.asdict(stats).items()}
    return {}


def _jsonable(value: Any) -> Any:
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
