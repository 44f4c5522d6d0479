"""The example config's scanner topic turns scans into stock transfers (holds with a reason)."""

from __future__ import annotations

import json
import tomllib
from datetime import UTC, datetime
from pathlib import Path

from agent.sources.mqtt.config import MqttSubscription
from agent.sources.mqtt.rules import RuleBook

EXAMPLE = Path(__file__).parents[4] / "config" / "agent.example.toml"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _scanner() -> RuleBook:
    config = tomllib.loads(EXAMPLE.read_text())
    rules = [s for s in config["mqtt"]["subscriptions"] if s["event"] == "stock.transferred"]
    assert len(rules) == 1
    return RuleBook([MqttSubscription(**rules[0])])


def test_a_scan_is_a_transfer_and_optional_fields_may_be_absent() -> None:
    book = _scanner()
    scan = {"scan_id": "S-1", "sku": "BOLT", "qty": 4, "from": "WHSTOCK", "to": "WH/Stock/Shelf 1"}
    event = book.apply("plant/scanners/hs-2/moved", json.dumps(scan).encode(), NOW)
    assert event.type == "stock.transferred"
    assert event.data == {
        "product": "BOLT",
        "qty": 4.0,
        "from_location": "WHSTOCK",
        "to_location": "WH/Stock/Shelf 1",
        "reference": "S-1",
    }
    assert event.dedupe_key == "mqtt:plant/scanners/+/moved:S-1"


def test_a_hold_is_a_scan_into_quarantine_with_a_reason() -> None:
    book = _scanner()
    scan = {
        "scan_id": "S-2",
        "sku": "RESIN",
        "qty": 3,
        "unit": "kg",
        "lot": "R-9",
        "from": "WH/Stock",
        "to": "QA-HOLD",
        "reason": "quality hold: colour",
    }
    event = book.apply("plant/scanners/hs-2/moved", json.dumps(scan).encode(), NOW)
    assert event.data["reason"] == "quality hold: colour"
    assert (event.data["lot"], event.data["uom"], event.data["to_location"]) == (
        "R-9",
        "kg",
        "QA-HOLD",
    )
