"""A step: the leading postings of one key applied together, by the effect that posts them.

``take_step`` asks the effect of the first posting how many fold; ``Applier`` hands the step to
that effect with the key's ledger and intent; ``merge_intent`` keeps the values of rounds that
never finished, since Odoo may hold any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cloud_relay.odoo.client import OdooClient
from cloud_relay.posting.effects.base import Effects, Item, Odoo, SaveIntent, StepState
from cloud_relay.posting.effects.registry import effect_of
from cloud_relay.posting.ledger import OrderLedger, same
from cloud_relay.posting.lookup import Lookup, Refused
from cloud_relay.posting.routing import UNREADABLE

__all__ = ["Applier", "Item", "Outcome", "merge_intent", "take_step"]


@dataclass
class Outcome:
    """What a step did: the new ledger and, per posting, what it became in Odoo."""

    ledger: dict[str, Any]
    effects: Effects


def take_step(key: str, items: Sequence[Item], *, single: bool) -> list[Item]:
    """The leading items of ``items`` that are applied together, as their effect folds them.

    ``single`` (an order that was refused) takes one event, so the one Odoo refuses is found.
    """
    if single or not items or key == UNREADABLE:
        return list(items[:1])
    first = items[0]
    found = effect_of(first.type, first.data) if first.data is not None else None
    if found is None:
        return [first]
    return list(items[: found[0].fold(items)])


def merge_intent(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """``new`` recorded on top of an intent that was never cleared (a step that failed or
    crashed): values about to be written accumulate, since Odoo may hold any of them."""
    merged = dict(old or {})
    for name, value in new.items():
        if name == "producing":
            merged[name] = _union(merged.get(name, []), value)
        elif name == "written":
            written = dict(merged.get(name, {}))
            for k, values in value.items():
                written[k] = _union(written.get(k, []), values)
            merged[name] = written
        else:
            merged[name] = value
    return merged


def _union(old: list[float], new: list[float]) -> list[float]:
    values = list(old)
    values.extend(v for v in new if not any(same(v, o) for o in values))
    return values[-16:]


class Applier:
    """Applies steps to one Odoo through one client, each by the effect of its events."""

    def __init__(self, client: OdooClient, *, consume_bom_when_unreported: bool = True) -> None:
        self._odoo = Odoo(client, Lookup(client), consume_bom_when_unreported)

    async def apply(
        self,
        key: str,
        step: Sequence[Item],
        ledger_json: dict[str, Any],
        intent: dict[str, Any] | None,
        save_intent: SaveIntent,
    ) -> Outcome:
        """Apply ``step`` (from :func:`take_step`) to Odoo; raises Refused (or an OdooError)."""
        if key == UNREADABLE or any(item.data is None for item in step):
            raise Refused("the stored event cannot be read as an event of a known type")
        first = step[0]
        assert first.data is not None
        found = effect_of(first.type, first.data)
        if found is None:
            raise Refused(f"event type {first.type!r} is not posted to Odoo")
        ledger = OrderLedger.from_json(ledger_json)
        state = StepState(key, ledger, intent or {}, save_intent, stored=ledger_json)
        effects = await found[0].apply(self._odoo, step, state)
        kept = state.own_ledger if state.own_ledger is not None else ledger.to_json()
        return Outcome(kept, effects)
