"""What every effect is: the :class:`Effect` protocol and the values effects work on.

An *effect* turns one family of plant-floor events into Odoo's records. The posting engine
reads each event's posting key from the effect that handles it, folds the leading events of a
key into one *step* as the effect says, and has the effect apply the step through the Odoo
client. Every step follows the same pattern, so doing it twice changes nothing:

1. read what Odoo has now, and refuse (``Refused``: the order is parked) when it is neither
   what the relay last wrote nor what it was about to write: a person changed it;
2. record the *intent* (``state.save_intent``: the absolute values about to be written);
3. write absolute values, create records bound to the event id (``load`` with an external id,
   an upsert), call a state-changing button only after reading the state;
4. update ``state.ledger`` and return what each posting became in Odoo; the engine commits the
   ledger and the postings as applied in one transaction.

A crash anywhere repeats the step from 1 with the intent at hand. See ``docs/posting.md``.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from cloud_relay.odoo.client import OdooClient
from cloud_relay.posting.ledger import OrderLedger
from cloud_relay.posting.lookup import Lookup, Product, Refused
from cloud_relay.posting.store import Posting
from cloud_relay.posting.transfer import TransferEffect
from cloud_relay.posting.units import Units
from wire.events import DATA_MODELS

SaveIntent = Callable[[dict[str, Any]], Awaitable[None]]
#: What each posting of a step became in Odoo, by pid (kept with the posting as applied).
Effects = dict[int, dict[str, Any]]

#: ``load`` reads naive datetimes in the context's (else the user's) time zone; ours are UTC.
UTC_CONTEXT = {"tz": "UTC"}
#: External ids of records the relay creates are ``cloud_relay.event_<event id>``.
XMLID_MODULE = "cloud_relay"

M = TypeVar("M", bound=BaseModel)


class Drift(Refused):
    """Odoo's value is not what the relay last wrote: someone changed it by hand."""


@dataclass(frozen=True, slots=True)
class Item:
    """A posting with its event's data decoded once into wire's typed model (None: the stored
    body is not a valid event of its type)."""

    posting: Posting
    type: str
    data: BaseModel | None

    @classmethod
    def of(cls, posting: Posting) -> Item:
        """Decode a posting's stored event."""
        model = DATA_MODELS.get(posting.type)
        data: BaseModel | None = None
        try:
            event = json.loads(posting.body)
            if model is not None and isinstance(event, dict):
                data = model.model_validate(event.get("data"))
        except (ValueError, ValidationError):
            data = None
        return cls(posting, posting.type, data)

    @property
    def event_id(self) -> str:
        return self.posting.event_id

    def model(self, kind: builtins.type[M]) -> M:
        """The data as ``kind``; a routing bug (an event in the wrong effect) if it is not."""
        if not isinstance(self.data, kind):
            raise Refused("the stored event cannot be read as an event of a known type")
        return self.data


@dataclass(frozen=True)
class Odoo:
    """The Odoo an effect posts into: the client, master-data lookups and options."""

    client: OdooClient
    lookup: Lookup
    consume_bom_when_unreported: bool = True
    units: Units = field(init=False)
    """Odoo's units of measure, read once: quantities are converted into the product's unit."""
    transfers: TransferEffect = field(init=False)
    """Pickings for stock transfers and receipts, with their location and type caches."""

    def __post_init__(self) -> None:
        units = Units(self.client)
        object.__setattr__(self, "units", units)
        object.__setattr__(self, "transfers", TransferEffect(self.client, self.lookup, units))

    async def in_product_unit(self, qty: float, uom: str | None, product: Product) -> float:
        """``qty`` reported in ``uom`` as a quantity of ``product``'s unit in Odoo (Refused
        naming both units when they are of different kinds)."""
        return await self.units.in_product_unit(qty, uom, product)

    @property
    def lot_field(self) -> str:
        """The MO's finished-lot field: a many2many from Odoo 19 on."""
        return "lot_producing_ids" if self.client.version >= 19 else "lot_producing_id"


@dataclass
class StepState:
    """The posting key's state for one step: its ledger (updated in place by the effect),
    the intent of a round that was never cleared, and how to record a new one."""

    key: str
    ledger: OrderLedger
    intent: dict[str, Any]
    save_intent: SaveIntent
    stored: dict[str, Any] = field(default_factory=dict)
    """The key's ledger as stored, for an effect that keeps a ledger of its own shape."""
    own_ledger: dict[str, Any] | None = None
    """Set by such an effect: the ledger to store instead of ``ledger``."""


class Effect(Protocol):
    """One family of events, from posting key to Odoo records.

    ``types``: the event types it handles (a type may be shared when ``key`` tells the
    families apart, as scrap on an order and scrap on no order do).
    """

    types: ClassVar[frozenset[str]]

    def key(self, event_type: str, data: BaseModel) -> str | None:
        """The posting key of an event of ``types``; None when this effect does not take it."""

    def fold(self, items: Sequence[Item]) -> int:
        """How many leading ``items`` (all of one key, the first of this effect) are applied
        as one step; at least 1."""

    async def apply(self, odoo: Odoo, step: Sequence[Item], state: StepState) -> Effects:
        """Apply the step through ``odoo.client``; update ``state.ledger``; raise Refused
        (or an OdooError) when Odoo cannot take it as it is."""


def odoo_datetime(value: datetime) -> str:
    """Odoo's datetime format: UTC, no offset, seconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def event_xmlid(event_id: str) -> str:
    """The external id binding a record the relay creates to the event it came from."""
    return f"{XMLID_MODULE}.event_{event_id.replace('-', '_')}"


def load_failed(what: str, result: Any) -> Refused:
    """A refusal naming Odoo's messages of a ``load`` that created nothing."""
    messages = [m.get("message", "") for m in (result or {}).get("messages", [])]
    return Refused(f"Odoo refused the {what}: " + ("; ".join(messages) or repr(result)))
