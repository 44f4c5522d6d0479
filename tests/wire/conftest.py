"""Shared fixtures for the wire contract tests: example events and the golden vectors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire.keys import load_private_key

VECTORS = Path(__file__).parent / "vectors"

#: One valid ``data`` per event type, each with its optional fields.
VALID_DATA: dict[str, dict[str, Any]] = {
    "production.reported": {
        "order": "WH/MO/00001",
        "qty": 5.0,
        "uom": "Units",
        "lot": "L1",
        "workcenter": "Press 1",
    },
    "material.consumed": {"order": "WH/MO/00001", "product": "STEEL", "qty": 1.5, "uom": "kg"},
    "scrap.reported": {"product": "STEEL", "qty": 0.25, "reason": "burr"},
    "operation.started": {"order": "WH/MO/00001", "operation": "Cutting"},
    "operation.paused": {"order": "WH/MO/00001", "workcenter": "Press 1"},
    "operation.finished": {"order": "WH/MO/00001", "operation": "Cutting", "workcenter": "P1"},
    "order.completed": {"order": "WH/MO/00001", "backorder": False},
    "inventory.counted": {"product": "STEEL", "location": "WH/Stock", "qty": 0.0},
    "stock.transferred": {
        "product": "STEEL",
        "qty": 2.0,
        "uom": "kg",
        "from_location": "WH/Stock",
        "to_location": "QUARANTINE",
        "lot": "L7",
        "reason": "quality hold",
    },
    "stock.received": {"product": "STEEL", "qty": 10.0, "location": "WH/Stock"},
    "signal.sampled": {"name": "spindle_temp", "value": 61.5, "unit": "degC"},
}

EventFactory = Callable[..., dict[str, Any]]


@pytest.fixture
def valid_data() -> dict[str, dict[str, Any]]:
    """One valid ``data`` per event type."""
    return {event_type: dict(data) for event_type, data in VALID_DATA.items()}


@pytest.fixture
def make_event() -> EventFactory:
    """Build a valid event dict in wire form; keyword arguments replace envelope fields."""

    def build(**overrides: Any) -> dict[str, Any]:
        event_type = overrides.get("type", "production.reported")
        event: dict[str, Any] = {
            "id": "017f22e2-79b0-7cc3-98c4-dc0c0c07398f",
            "gateway_id": "gw-1",
            "seq": 1,
            "type": event_type,
            "occurred_at": "2026-01-01T00:00:00.000000Z",
            "source": "mqtt:plant/line1",
            "data": dict(VALID_DATA.get(event_type, {})),
        }
        event.update(overrides)
        return event

    return build


@pytest.fixture(scope="session")
def vector() -> dict[str, Any]:
    """The committed signed-batch vector."""
    loaded: dict[str, Any] = json.loads((VECTORS / "signed-batch.json").read_text("utf-8"))
    return loaded


@pytest.fixture(scope="session")
def vector_key() -> Ed25519PrivateKey:
    """The committed test gateway key."""
    return load_private_key(VECTORS / "test-gateway.pem")
