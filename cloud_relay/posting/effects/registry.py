"""Which effect posts each event type: the one list to extend with a new kind of event.

Adding an event type is a wire model (``wire/events.py``), one effect module in this package
(a class with the :class:`~cloud_relay.posting.effects.base.Effect` protocol), one line in
:data:`EFFECTS` and one test module. See ``docs/posting.md``.
"""

from __future__ import annotations

from pydantic import BaseModel

from cloud_relay.posting.effects.base import Effect
from cloud_relay.posting.effects.completion import Completion
from cloud_relay.posting.effects.inventory import InventoryCount
from cloud_relay.posting.effects.operations import Operations
from cloud_relay.posting.effects.quantities import OrderQuantities
from cloud_relay.posting.effects.scrap import LooseScrap
from cloud_relay.posting.effects.stock import StockMoves

#: Every effect; for a type several handle, the first whose ``key`` takes the event wins.
EFFECTS: tuple[Effect, ...] = (
    OrderQuantities(),
    LooseScrap(),
    Operations(),
    Completion(),
    InventoryCount(),
    StockMoves(),
)

#: Event types kept at the relay and never posted to Odoo.
NOT_POSTED = frozenset({"signal.sampled"})


def effect_of(event_type: str, data: BaseModel) -> tuple[Effect, str] | None:
    """The effect that posts an event and the event's posting key; None when none does."""
    for effect in EFFECTS:
        if event_type in effect.types:
            key = effect.key(event_type, data)
            if key is not None:
                return effect, key
    return None
