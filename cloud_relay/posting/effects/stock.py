"""Stock transfers and receipts from scanners, WMS and the line: one done picking per event.

The picking is named from the event id (``RELAY/<event id>``), Odoo's unique picking name per
company, so a step repeated after a crash finds the picking it made and validates or skips it
(:class:`~cloud_relay.posting.transfer.TransferEffect`). Events are keyed per product, so an
unknown product, location or lot parks only that product's moves.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from pydantic import BaseModel

from cloud_relay.posting.effects.base import Effects, Item, Odoo, StepState
from cloud_relay.posting.transfer import KEY_PREFIX, STOCK_TYPES, record


class _StockEvent:
    """A posting as the transfer module reads it: its id, type and the event's data."""

    def __init__(self, item: Item) -> None:
        self.event_id = item.event_id
        self.type = item.type
        event = json.loads(item.posting.body)
        self.data: dict[str, Any] = event.get("data") or {}


class StockMoves:
    """``stock.transferred`` and ``stock.received``."""

    types: ClassVar[frozenset[str]] = STOCK_TYPES

    def key(self, event_type: str, data: BaseModel) -> str | None:
        return f"{KEY_PREFIX}{getattr(data, 'product')}"  # noqa: B009 (two models share it)

    def fold(self, items: Sequence[Item]) -> int:
        """One: each event is a picking of its own."""
        return 1

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        event = _StockEvent(step[0])
        effect = await odoo.transfers.apply(event)
        at = datetime.now(UTC).isoformat()
        state.own_ledger = record(state.stored, event, effect, at)
        return {step[0].posting.pid: effect}
