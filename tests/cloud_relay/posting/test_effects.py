"""The effect registry: every wire event type is posted by one effect or kept at the relay,
keys read as what they name, and each effect folds its own family only."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cloud_relay.posting.effects import EFFECTS, NOT_POSTED, Item, effect_of
from cloud_relay.posting.routing import UNREADABLE, key_of_body, order_key
from cloud_relay.posting.step import take_step
from cloud_relay.posting.store import Posting
from wire.events import DATA_MODELS

WHEN = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def posting(pid: int, event_type: str, **data: Any) -> Posting:
    body = json.dumps({"type": event_type, "data": data}).encode()
    key = order_key(event_type, data) or "none"
    return Posting(pid, f"e{pid}", "gw-1", pid, key, event_type, WHEN, body)


def items(*postings: Posting) -> list[Item]:
    return [Item.of(p) for p in postings]


def test_every_wire_type_is_posted_by_an_effect_or_kept_at_the_relay() -> None:
    handled = set().union(*(effect.types for effect in EFFECTS))
    assert set(DATA_MODELS) == handled | NOT_POSTED
    assert not handled & NOT_POSTED


@pytest.mark.parametrize(
    ("event_type", "data", "key"),
    [
        ("production.reported", {"order": "WH/MO/1", "qty": 2}, "mo:WH/MO/1"),
        ("material.consumed", {"order": "WH/MO/1", "product": "BOLT", "qty": 2}, "mo:WH/MO/1"),
        ("scrap.reported", {"order": "WH/MO/1", "product": "BOLT", "qty": 1}, "mo:WH/MO/1"),
        ("scrap.reported", {"product": "BOLT", "qty": 1}, "scrap:BOLT"),
        ("operation.started", {"order": "WH/MO/1", "workcenter": "CUT"}, "mo:WH/MO/1"),
        ("order.completed", {"order": "WH/MO/1", "backorder": False}, "mo:WH/MO/1"),
        (
            "inventory.counted",
            {"product": "BOLT", "location": "WH/Stock", "qty": 0},
            "inventory:WH/Stock:BOLT",
        ),
        ("signal.sampled", {"name": "temp", "value": 20.5}, None),
    ],
)
def test_keys_come_from_the_effect(event_type: str, data: dict[str, Any], key: str | None) -> None:
    assert order_key(event_type, data) == key
    body = json.dumps({"type": event_type, "data": data}).encode()
    assert key_of_body(body) == (event_type, key)


def test_unreadable_bodies_and_unknown_types_get_the_unreadable_key() -> None:
    assert key_of_body(b"not json") == ("unknown", UNREADABLE)
    assert key_of_body(b'{"type": "robot.danced", "data": {}}') == ("robot.danced", UNREADABLE)
    assert key_of_body(b'{"type": "production.reported", "data": {"qty": 1}}') == (
        "production.reported",
        UNREADABLE,
    )


def test_quantities_fold_until_another_family_or_a_second_finished_lot() -> None:
    run = items(
        posting(1, "production.reported", order="A", qty=1, lot="L1"),
        posting(2, "material.consumed", order="A", product="BOLT", qty=2),
        posting(3, "scrap.reported", order="A", product="BOLT", qty=1),
        posting(4, "production.reported", order="A", qty=1, lot="L2"),
    )
    assert [i.posting.pid for i in take_step("mo:A", run, single=False)] == [1, 2, 3]
    mixed = items(
        posting(1, "production.reported", order="A", qty=1),
        posting(2, "operation.started", order="A", workcenter="CUT"),
        posting(3, "production.reported", order="A", qty=1),
    )
    assert [i.posting.pid for i in take_step("mo:A", mixed, single=False)] == [1]
    assert [i.posting.pid for i in take_step("mo:A", mixed[1:], single=False)] == [2]
    assert [i.posting.pid for i in take_step("mo:A", mixed, single=True)] == [1]


def test_counts_and_loose_scraps_fold_whole_runs() -> None:
    counts = items(
        *(posting(n, "inventory.counted", product="B", location="S", qty=n) for n in (1, 2, 3))
    )
    assert len(take_step("inventory:S:B", counts, single=False)) == 3
    scraps = items(*(posting(n, "scrap.reported", product="B", qty=1) for n in (1, 2)))
    assert len(take_step("scrap:B", scraps, single=False)) == 2


def test_an_item_decodes_its_event_once_into_the_wire_model() -> None:
    (item,) = items(posting(1, "material.consumed", order="A", product="BOLT", qty=2))
    found = effect_of(item.type, item.data) if item.data else None
    assert found is not None and found[1] == "mo:A"
    assert type(item.data).__name__ == "MaterialConsumed"
    broken = Item.of(Posting(9, "e9", "gw-1", 9, "mo:A", "production.reported", WHEN, b"{"))
    assert broken.data is None
    assert take_step("mo:A", [broken], single=False) == [broken]
