"""The verdict a technician reads first: green, amber or red, with the reason in words."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from agent.health.status import assess

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Queue:
    full: bool = False
    last_error: str | None = None
    moved_aside: tuple[str, ...] = ()


@dataclass(frozen=True)
class Uplink:
    alarm: str | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_success_at: datetime | None = NOW
    link_up: bool = True


@dataclass(frozen=True)
class Source:
    connected: bool = True
    last_error: str | None = None


def verdict(**components: Any) -> tuple[str, tuple[str, ...]]:
    base: dict[str, Any] = {"queue": Queue(), "uploader": Uplink(), "mqtt": Source()}
    health = assess({**base, **components})
    return health.status, health.reasons


def test_all_well_is_green() -> None:
    assert verdict() == ("green", ("all components healthy",))


def test_relay_unreachable_is_amber_with_the_error() -> None:
    status, reasons = verdict(
        uploader=Uplink(link_up=False, last_error="cannot connect to relay at http://r: refused")
    )
    assert status == "amber"
    assert reasons == ("relay unreachable: cannot connect to relay at http://r: refused",)


def test_recovered_link_is_green_again() -> None:
    assert verdict(uploader=Uplink(link_up=True, last_error="old trouble"))[0] == "green"


def test_relay_refusing_our_key_is_red() -> None:
    status, reasons = verdict(uploader=Uplink(alarm="relay refused our key (403)"))
    assert status == "red"
    assert "relay refuses uploads: relay refused our key (403)" in reasons


def test_full_queue_is_red_and_says_sources_are_paused() -> None:
    status, reasons = verdict(queue=Queue(full=True, last_error="database or disk is full"))
    assert status == "red"
    assert reasons == ("queue is full (database or disk is full): sources are paused",)


def test_broker_down_is_amber_naming_the_source() -> None:
    status, reasons = verdict(mqtt=Source(connected=False, last_error="connection refused"))
    assert status == "amber"
    assert reasons == ("mqtt source is not connected: connection refused",)


def test_worst_level_wins_and_every_reason_is_listed() -> None:
    status, reasons = verdict(
        mqtt=Source(connected=False), queue=replace(Queue(), moved_aside=("q.db.corrupt-1",))
    )
    assert status == "red"
    assert len(reasons) == 2
