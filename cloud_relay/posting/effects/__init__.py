"""Effects: one module per family of events, each turning its events into Odoo's records.

:mod:`~cloud_relay.posting.effects.base` holds the :class:`Effect` protocol,
:mod:`~cloud_relay.posting.effects.registry` the list of effects.
"""

from cloud_relay.posting.effects.base import Effect, Effects, Item, Odoo, StepState
from cloud_relay.posting.effects.registry import EFFECTS, NOT_POSTED, effect_of

__all__ = ["EFFECTS", "NOT_POSTED", "Effect", "Effects", "Item", "Odoo", "StepState", "effect_of"]
