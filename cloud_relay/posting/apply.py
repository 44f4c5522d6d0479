"""Turning plant-floor events into Odoo's records, so that doing it twice changes nothing.

One *step* is the events of one posting key applied together: a run of production,
consumption and scrap of one MO becomes one read of the MO, one read of its components and
one ``write`` (plus one ``load`` and one ``do_scrap`` for the scraps), whatever the run's
length. Every step follows the same pattern:

1. read what Odoo has now, and refuse (park the order) when it is neither what the relay last
   wrote nor what it was about to write: a person changed it;
2. record the *intent* (the absolute values about to be written) in the posting store;
3. write absolute values (``qty_producing = 12``), create records bound to the event id
   (``load`` with an external id, an upsert), and call a state-changing button only after
   reading the state;
4. the caller commits the new ledger and the postings as applied in one transaction.

A crash anywhere repeats the step from 1 with the intent at hand, and every write in it is
idempotent, so the effect in Odoo is the same as one clean run.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.errors import OdooRecordNotFound
from cloud_relay.posting.ledger import OrderLedger, line_key, same, split_line_key
from cloud_relay.posting.lookup import Lookup, Product, Refused, many2one_id, many2one_name
from cloud_relay.posting.routing import UNREADABLE, order_name
from cloud_relay.posting.store import Posting
from cloud_relay.posting.transfer import KEY_PREFIX as STOCK_KEY_PREFIX
from cloud_relay.posting.transfer import TransferEffect, record
from cloud_relay.posting.units import Units

QUANTITY_TYPES = frozenset({"production.reported", "material.consumed", "scrap.reported"})
OPERATION_TYPES = frozenset({"operation.started", "operation.paused", "operation.finished"})
_WIZARDS_NOT_ANSWERED = frozenset({"mrp.batch.produce", "mrp.production.serials"})
_MO_FIELDS = (
    "name",
    "state",
    "product_id",
    "product_qty",
    "product_tracking",
    "qty_producing",
    "location_src_id",
    "product_uom_id",
)
_MOVE_FIELDS = ("product_id", "quantity", "picked", "state", "move_line_ids")
#: ``load`` reads naive datetimes in the context's (else the user's) time zone; ours are UTC.
_UTC = {"tz": "UTC"}
#: External ids of records the relay creates are ``cloud_relay.event_<event id>``.
XMLID_MODULE = "cloud_relay"

SaveIntent = Callable[[dict[str, Any]], Awaitable[None]]


class Drift(Refused):
    """Odoo's value is not what the relay last wrote: someone changed it by hand."""


@dataclass(frozen=True, slots=True)
class Item:
    """A posting with its event decoded."""

    posting: Posting
    type: str
    data: dict[str, Any]

    @classmethod
    def of(cls, posting: Posting) -> Item:
        """Decode a posting's stored event (an unreadable one keeps empty data)."""
        try:
            event = json.loads(posting.body)
            data = event["data"] if isinstance(event.get("data"), dict) else {}
        except (ValueError, AttributeError):
            data = {}
        return cls(posting, posting.type, data)

    @property
    def event_id(self) -> str:
        return self.posting.event_id

    @property
    def qty(self) -> float:
        return float(self.data["qty"])


@dataclass
class Outcome:
    """What a step did: the new ledger and, per posting, what it became in Odoo."""

    ledger: dict[str, Any]
    effects: dict[int, dict[str, Any]]


def take_step(key: str, items: Sequence[Item], *, single: bool) -> list[Item]:
    """The leading items of ``items`` that are applied together.

    Consecutive quantities of one MO fold (sums commute), but a change of the finished lot,
    an operation or a completion ends the run: each of those is a step of its own. Inventory
    counts of one product and place fold to the last one (a count is absolute). ``single``
    (an order that was refused) takes one event, so the one Odoo refuses is found.
    """
    if single or not items or key == UNREADABLE:
        return list(items[:1])
    first = items[0]
    if key.startswith("inventory:") or key.startswith("scrap:"):
        return list(items)
    if first.type not in QUANTITY_TYPES:
        return [first]
    step: list[Item] = []
    lot: str | None = None
    for item in items:
        if item.type not in QUANTITY_TYPES:
            break
        if item.type == "production.reported" and item.data.get("lot"):
            if lot is not None and item.data["lot"] != lot:
                break
            lot = item.data["lot"]
        step.append(item)
    return step


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


def odoo_datetime(value: datetime) -> str:
    """Odoo's datetime format: UTC, no offset, seconds."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def event_xmlid(event_id: str) -> str:
    """The external id binding a record the relay creates to the event it came from."""
    return f"{XMLID_MODULE}.event_{event_id.replace('-', '_')}"


class Applier:
    """Applies steps to one Odoo through one client."""

    def __init__(self, client: OdooClient, *, consume_bom_when_unreported: bool = True) -> None:
        self._client = client
        self._lookup = Lookup(client)
        self._consume_bom = consume_bom_when_unreported
        self._lot_field = "lot_producing_ids" if client.version >= 19 else "lot_producing_id"
        self._units = Units(client)
        self._transfers = TransferEffect(client, self._lookup, self._units)

    async def apply(
        self,
        key: str,
        step: Sequence[Item],
        ledger_json: dict[str, Any],
        intent: dict[str, Any] | None,
        save_intent: SaveIntent,
    ) -> Outcome:
        """Apply ``step`` (from :func:`take_step`) to Odoo; raises Refused (or an OdooError)."""
        ledger = OrderLedger.from_json(ledger_json)
        intent = intent or {}
        if key == UNREADABLE or any(not item.data for item in step):
            raise Refused("the stored event cannot be read as an event of a known type")
        if key.startswith(STOCK_KEY_PREFIX):
            effect = await self._transfers.apply(step[0])
            at = datetime.now(UTC).isoformat()
            return Outcome(record(ledger_json, step[0], effect, at), {step[0].posting.pid: effect})
        if key.startswith("inventory:"):
            effects = await self._inventory(step[-1], step, intent, save_intent)
        elif key.startswith("scrap:"):
            effects = await self._scraps(step, None, intent, save_intent)
        elif step[0].type in QUANTITY_TYPES:
            effects = await self._quantities(key, step, ledger, intent, save_intent)
        elif step[0].type in OPERATION_TYPES:
            effects = await self._operation(key, step[0], ledger, intent, save_intent)
        elif step[0].type == "order.completed":
            effects = await self._complete(key, step[0], ledger, intent, save_intent)
        else:
            raise Refused(f"event type {step[0].type!r} is not posted to Odoo")
        return Outcome(ledger.to_json(), effects)

    async def _converted(self, item: Item, product: Product) -> Item:
        """The item with its quantity in the product's unit (Refused across kinds of unit)."""
        unit = item.data.get("uom")
        if not unit or unit == product.uom_name:
            return item
        qty = await self._units.in_product_unit(item.qty, unit, product)
        return Item(item.posting, item.type, {**item.data, "qty": qty, "uom": product.uom_name})

    # -- the manufacturing order ------------------------------------------------------------

    async def _order(self, key: str, ledger: OrderLedger) -> dict[str, Any]:
        """The MO of ``key`` as Odoo has it now (bound in the ledger on first sight)."""
        fields = [*_MO_FIELDS, self._lot_field]
        if ledger.mo_id is not None:
            try:
                return (await self._client.read("mrp.production", [ledger.mo_id], fields))[0]
            except OdooRecordNotFound:
                raise Refused(
                    f"manufacturing order {ledger.mo_name!r} (id {ledger.mo_id}) "
                    "was deleted in Odoo"
                ) from None
        name = order_name(key) or key
        rows = await self._client.search_read(
            "mrp.production", [["name", "=", name]], fields, limit=1
        )
        if not rows:
            # Odoo renames an order split by a backorder NAME-001, NAME-002...
            rows = await self._client.search_read(
                "mrp.production",
                [["name", "=like", f"{name}-%"], ["state", "not in", ["done", "cancel"]]],
                fields,
                limit=1,
                order="id",
            )
        if not rows:
            raise Refused(f"unknown order: no manufacturing order named {name!r} in Odoo (yet)")
        ledger.mo_id = int(rows[0]["id"])
        ledger.mo_name = str(rows[0]["name"])
        return rows[0]

    def _check_open(self, mo: dict[str, Any], ledger: OrderLedger) -> None:
        name = mo["name"]
        state = mo["state"]
        if state == "draft":
            raise Refused(f"manufacturing order {name} is a draft in Odoo: confirm it")
        if state == "cancel":
            raise Refused(f"manufacturing order {name} was cancelled in Odoo")
        if state == "done":
            if ledger.done:
                raise Refused(
                    f"manufacturing order {name} was already completed by an earlier "
                    "order.completed; this event came after it"
                )
            raise Refused(f"manufacturing order {name} was closed in Odoo by hand (state done)")

    def _lot_of(self, mo: dict[str, Any]) -> int | None:
        value = mo.get(self._lot_field)
        if self._lot_field == "lot_producing_ids":
            return int(value[0]) if value else None
        return many2one_id(value)

    # -- production, consumption, scrap --------------------------------------------------------

    async def _quantities(
        self,
        key: str,
        step: Sequence[Item],
        ledger: OrderLedger,
        intent: dict[str, Any],
        save_intent: SaveIntent,
    ) -> dict[int, dict[str, Any]]:
        mo = await self._order(key, ledger)
        self._check_open(mo, ledger)
        produced = [i for i in step if i.type == "production.reported"]
        consumed = [i for i in step if i.type == "material.consumed"]
        scraps = [i for i in step if i.type == "scrap.reported"]
        codes = {i.data["product"] for i in consumed}
        products = await self._lookup.products(codes) if codes else {}
        consumed = [await self._converted(i, products[i.data["product"]]) for i in consumed]
        if any(i.data.get("uom") for i in produced):
            finished = Product(
                many2one_id(mo["product_id"]) or 0,
                many2one_name(mo["product_id"]) or "",
                many2one_name(mo["product_id"]) or "",
                "none",
                many2one_id(mo.get("product_uom_id")) or 0,
                many2one_name(mo.get("product_uom_id")) or "",
            )
            produced = [await self._converted(i, finished) for i in produced]
        if scraps:
            # Refuse an unknown scrapped product before anything is written.
            await self._lookup.products({i.data["product"] for i in scraps})

        vals: dict[str, Any] = {}
        new_intent: dict[str, Any] = {}
        producing = ledger.produced + sum(i.qty for i in produced)
        lot_name = next((i.data["lot"] for i in reversed(produced) if i.data.get("lot")), None)
        if produced:
            odoo_qty = float(mo["qty_producing"] or 0.0)
            if (
                ledger.producing_written is not None
                and not same(odoo_qty, ledger.producing_written)
                and not any(same(odoo_qty, v) for v in intent.get("producing", []))
            ):
                raise Drift(
                    f"manufacturing order {mo['name']}: quantity producing in Odoo is "
                    f"{odoo_qty:g}, the relay last wrote {ledger.producing_written:g}; "
                    "it was changed outside the relay. Set it back (or settle the difference) "
                    "and replay"
                )
            vals["qty_producing"] = round(producing, 6)
            new_intent["producing"] = [round(producing, 6)]
            if lot_name and mo.get("product_tracking", "none") != "none":
                if ledger.lot and lot_name != ledger.lot:
                    raise Refused(
                        f"manufacturing order {mo['name']} is producing lot {ledger.lot}; "
                        f"lot {lot_name} needs the order completed first (with a backorder)"
                    )
                product_id = many2one_id(mo["product_id"])
                assert product_id is not None
                finished = Product(
                    product_id, "", many2one_name(mo["product_id"]) or "", "lot", 0, ""
                )
                lot_id = (await self._lookup.lots(finished, {lot_name}, create=True))[lot_name]
                if self._lot_of(mo) != lot_id:
                    vals[self._lot_field] = (
                        [[6, 0, [lot_id]]] if self._lot_field == "lot_producing_ids" else lot_id
                    )
            else:
                lot_name = ledger.lot

        totals = dict(ledger.consumed)
        for item in consumed:
            product = products[item.data["product"]]
            lot = item.data.get("lot") if product.tracking != "none" else None
            if product.tracking != "none" and not lot:
                raise Refused(
                    f"product {product.code!r} is tracked by {product.tracking} in Odoo: "
                    "material.consumed needs a lot"
                )
            k = line_key(product.code, lot)
            totals[k] = totals.get(k, 0.0) + item.qty
        targets = {k: v for k, v in totals.items() if split_line_key(k)[0] in codes}
        if targets:
            commands = await self._component_commands(mo, products, targets, ledger, intent)
            if commands:
                vals["move_raw_ids"] = commands
            new_intent["written"] = {k: [round(v, 6)] for k, v in targets.items()}
        if scraps:
            new_intent["scraps"] = [i.event_id for i in scraps]

        await save_intent(new_intent)
        if vals:
            await self._client.write("mrp.production", [ledger.mo_id or 0], vals)
        effects: dict[int, dict[str, Any]] = {}
        if scraps:
            effects.update(await self._scraps(scraps, mo, intent, None))
        ledger.produced = producing
        if produced:
            ledger.producing_written = round(producing, 6)
            ledger.lot = lot_name
        ledger.consumed = totals
        ledger.written.update({k: round(v, 6) for k, v in targets.items()})
        ledger.scrapped += sum(i.qty for i in scraps)
        for item in produced:
            effects[item.posting.pid] = {
                "mo": mo["name"],
                "qty_producing": ledger.producing_written,
            }
        for item in consumed:
            effects[item.posting.pid] = {"mo": mo["name"], "component": item.data["product"]}
        return effects

    async def _component_commands(
        self,
        mo: dict[str, Any],
        products: dict[str, Product],
        targets: dict[str, float],
        ledger: OrderLedger,
        intent: dict[str, Any],
    ) -> list[list[Any]]:
        """Commands on ``move_raw_ids`` setting each component to its cumulative target."""
        moves = await self._client.search_read(
            "stock.move",
            [
                ["raw_material_production_id", "=", mo["id"]],
                ["state", "not in", ["done", "cancel"]],
            ],
            _MOVE_FIELDS,
            order="id",
        )
        by_product: dict[int, dict[str, Any]] = {}
        for row in moves:
            by_product.setdefault(many2one_id(row["product_id"]) or 0, row)
        tracked_moves = [
            by_product[p.id]["id"]
            for p in products.values()
            if p.tracking != "none" and p.id in by_product
        ]
        lines: list[dict[str, Any]] = []
        if tracked_moves:
            lines = await self._client.search_read(
                "stock.move.line",
                [["move_id", "in", tracked_moves]],
                ["move_id", "lot_id", "quantity", "picked"],
                order="id",
            )
        before: dict[str, list[float]] = intent.get("written", {})
        per_product: dict[str, dict[str, float]] = {}
        for k, target in targets.items():
            code, lot = split_line_key(k)
            per_product.setdefault(code, {})[lot or ""] = target
        commands: list[list[Any]] = []
        for code, lots in sorted(per_product.items()):
            product = products[code]
            move: dict[str, Any] | None = by_product.get(product.id)
            if product.tracking == "none":
                target = lots[""]
                k = line_key(code, None)
                if move is None:
                    commands.append(
                        [
                            0,
                            0,
                            {
                                "product_id": product.id,
                                "product_uom_qty": round(target, 6),
                                "quantity": round(target, 6),
                                "picked": True,
                            },
                        ]
                    )
                    continue
                _check_drift(
                    mo,
                    code,
                    float(move["quantity"]) if move["picked"] else 0.0,
                    ledger.written.get(k),
                    before.get(k, []),
                )
                commands.append([1, move["id"], {"quantity": round(target, 6), "picked": True}])
                continue
            lot_ids = await self._lookup.lots(product, set(lots), create=False)
            line_commands: list[list[Any]] = []
            move_lines = [ln for ln in lines if move and many2one_id(ln["move_id"]) == move["id"]]
            wanted = set(lot_ids.values())
            for lot, target in sorted(lots.items()):
                k = line_key(code, lot)
                line = next(
                    (ln for ln in move_lines if many2one_id(ln["lot_id"]) == lot_ids[lot]), None
                )
                current = float(line["quantity"]) if line and line["picked"] else 0.0
                _check_drift(
                    mo, f"{code} lot {lot}", current, ledger.written.get(k), before.get(k, [])
                )
                values = {"quantity": round(target, 6), "picked": True}
                if line is None:
                    line_commands.append(
                        [0, 0, {"product_id": product.id, "lot_id": lot_ids[lot], **values}]
                    )
                else:
                    line_commands.append([1, line["id"], values])
            for line in move_lines:
                if not line["picked"] and many2one_id(line["lot_id"]) not in wanted:
                    # A reservation on a lot the floor did not use: drop it ([2, id] releases
                    # the reserved quantity; [3, id] would leak it).
                    line_commands.append([2, line["id"]])
            if move is None:
                total = sum(lots.values())
                commands.append(
                    [
                        0,
                        0,
                        {
                            "product_id": product.id,
                            "product_uom_qty": round(total, 6),
                            "move_line_ids": line_commands,
                        },
                    ]
                )
            else:
                commands.append([1, move["id"], {"move_line_ids": line_commands}])
        return commands

    async def _scraps(
        self,
        step: Sequence[Item],
        mo: dict[str, Any] | None,
        intent: dict[str, Any],
        save_intent: SaveIntent | None,
    ) -> dict[int, dict[str, Any]]:
        """Scraps bound to their events by external id, then validated if still drafts."""
        products = await self._lookup.products({i.data["product"] for i in step})
        location = many2one_id(mo["location_src_id"]) if mo else await self._lookup.stock_location()
        rows: list[list[Any]] = []
        for item in step:
            product = products[item.data["product"]]
            item = await self._converted(item, product)
            lot_id: Any = ""
            if item.data.get("lot") and product.tracking != "none":
                lot = item.data["lot"]
                lot_id = (await self._lookup.lots(product, {lot}, create=False))[lot]
            rows.append(
                [
                    event_xmlid(item.event_id),
                    product.id,
                    item.qty,
                    location,
                    lot_id,
                    mo["id"] if mo else "",
                    (item.data.get("reason") or "")[:1024],
                ]
            )
        if save_intent is not None:
            await save_intent({"scraps": [i.event_id for i in step]})
        fields = [
            "id",
            "product_id/.id",
            "scrap_qty",
            "location_id/.id",
            "lot_id/.id",
            "production_id/.id",
            "origin",
        ]
        result = await self._client.execute("stock.scrap", "load", fields, rows, context=_UTC)
        messages = [m.get("message", "") for m in (result or {}).get("messages", [])]
        ids = (result or {}).get("ids")
        if messages or not ids or len(ids) != len(step):
            raise Refused("Odoo refused the scrap: " + ("; ".join(messages) or repr(result)))
        todo = list(ids)
        if intent.get("scraps"):
            # A repeat after a crash: only validate the scraps still in draft.
            states = await self._client.read("stock.scrap", ids, ["state"])
            todo = [int(r["id"]) for r in states if r["state"] != "done"]
        for scrap_id in todo:
            # One call per scrap: on several at once Odoo 18 (mrp's _compute_scrap_qty returns
            # after the first record) resets the quantity shown on all but the first to 1.
            await self._client.execute("stock.scrap", "do_scrap", [scrap_id])
        return {
            item.posting.pid: {"scrap_id": int(scrap_id)}
            for item, scrap_id in zip(step, ids, strict=True)
        }

    # -- work orders -------------------------------------------------------------------------

    async def _operation(
        self,
        key: str,
        item: Item,
        ledger: OrderLedger,
        intent: dict[str, Any],
        save_intent: SaveIntent,
    ) -> dict[int, dict[str, Any]]:
        mo = await self._order(key, ledger)
        self._check_open(mo, ledger)
        workorder = await self._workorder(mo, item)
        wo_key = str(workorder["id"])
        when = odoo_datetime(item.posting.occurred_at)
        effect: dict[str, Any] = {"mo": mo["name"], "workorder_id": workorder["id"]}
        if item.type == "operation.started":
            if wo_key in ledger.open_logs:
                effect["already_started"] = True
                return {item.posting.pid: effect}
            await save_intent({"start": wo_key})
            loss = await self._lookup.productive_loss()
            workcenter = many2one_id(workorder["workcenter_id"])
            result = await self._client.execute(
                "mrp.workcenter.productivity",
                "load",
                [
                    "id",
                    "workorder_id/.id",
                    "workcenter_id/.id",
                    "loss_id/.id",
                    "date_start",
                    "description",
                ],
                [
                    [
                        event_xmlid(item.event_id),
                        workorder["id"],
                        workcenter,
                        loss,
                        when,
                        f"plant floor: {item.data.get('operation') or item.data.get('workcenter')}",
                    ]
                ],
                context=_UTC,
            )
            ids = (result or {}).get("ids")
            if not ids:
                messages = [m.get("message", "") for m in (result or {}).get("messages", [])]
                raise Refused("Odoo refused the time log: " + ("; ".join(messages) or repr(result)))
            ledger.open_logs[wo_key] = int(ids[0])
            effect["time_log_id"] = int(ids[0])
            return {item.posting.pid: effect}
        log_id = ledger.open_logs.pop(wo_key, None)
        if log_id is not None:
            await self._client.write("mrp.workcenter.productivity", [log_id], {"date_end": when})
            effect["time_log_id"] = log_id
        if item.type == "operation.finished" and workorder["state"] not in ("done", "cancel"):
            await save_intent({"finish": wo_key})
            await self._client.execute("mrp.workorder", "button_finish", [workorder["id"]])
            effect["finished"] = True
        return {item.posting.pid: effect}

    async def _workorder(self, mo: dict[str, Any], item: Item) -> dict[str, Any]:
        workorders = await self._client.search_read(
            "mrp.workorder",
            [["production_id", "=", mo["id"]]],
            ["name", "workcenter_id", "state"],
            order="id",
        )
        operation = item.data.get("operation")
        workcenter = item.data.get("workcenter")
        if operation:
            matches = [w for w in workorders if w["name"] == operation]
        else:
            matches = [w for w in workorders if many2one_name(w["workcenter_id"]) == workcenter]
            if not matches:
                matches = [
                    w
                    for w in workorders
                    if (many2one_name(w["workcenter_id"]) or "").startswith(f"[{workcenter}]")
                ]
        if not matches:
            what = f"operation {operation!r}" if operation else f"work centre {workcenter!r}"
            names = ", ".join(repr(w["name"]) for w in workorders) or "none"
            raise Refused(
                f"manufacturing order {mo['name']} has no work order for {what} "
                f"(its work orders: {names})"
            )
        open_matches = [w for w in matches if w["state"] not in ("done", "cancel")]
        return (open_matches or matches)[0]

    # -- completion ---------------------------------------------------------------------------

    async def _complete(
        self,
        key: str,
        item: Item,
        ledger: OrderLedger,
        intent: dict[str, Any],
        save_intent: SaveIntent,
    ) -> dict[int, dict[str, Any]]:
        mo = await self._order(key, ledger)
        backorder = bool(item.data.get("backorder"))
        if mo["state"] == "done" and intent.get("complete") == mo["id"]:
            # Marked done before a crash: only the ledger is left to write.
            return await self._completed(mo, item, ledger, backorder, None)
        self._check_open(mo, ledger)
        if ledger.producing_written is None or ledger.producing_written <= 0:
            raise Refused(
                f"manufacturing order {mo['name']}: order.completed but no production was "
                "reported; Odoo would record the whole quantity as produced"
            )
        odoo_qty = float(mo["qty_producing"] or 0.0)
        if not same(odoo_qty, ledger.producing_written):
            raise Drift(
                f"manufacturing order {mo['name']}: quantity producing in Odoo is {odoo_qty:g}, "
                f"the relay last wrote {ledger.producing_written:g}; it was changed outside "
                "the relay. Set it back and replay"
            )
        when = odoo_datetime(item.posting.occurred_at)
        for wo_key, log_id in sorted(ledger.open_logs.items()):
            await self._client.write("mrp.workcenter.productivity", [log_id], {"date_end": when})
            del ledger.open_logs[wo_key]
        await save_intent({"complete": mo["id"], "backorder": backorder})
        if not ledger.consumed and self._consume_bom:
            await self._client.execute("mrp.production", "set_qty_producing", [mo["id"]])
        context: dict[str, Any] = {"skip_backorder": True, "skip_consumption": True}
        if backorder:
            context["mo_ids_to_backorder"] = [mo["id"]]
        result: Any = None
        for _ in range(3):
            result = await self._client.execute(
                "mrp.production", "button_mark_done", [mo["id"]], context=context
            )
            if result is not None:
                break
            # Odoo 19 may only generate the missing lot and return nothing: call again.
        if isinstance(result, dict) and result.get("res_model") in _WIZARDS_NOT_ANSWERED:
            wizard = result.get("name") or result["res_model"]
            raise Refused(
                f"manufacturing order {mo['name']}: Odoo asks for {wizard} before it can be "
                "marked done; finish it in Odoo"
            )
        state = (await self._client.read("mrp.production", [mo["id"]], ["state"]))[0]["state"]
        if state != "done":
            raise Refused(
                f"manufacturing order {mo['name']}: Odoo left it in state {state} after mark done"
            )
        backorder_id = (
            int(result["res_id"])
            if isinstance(result, dict)
            and result.get("res_model") == "mrp.production"
            and result.get("res_id")
            else None
        )
        return await self._completed(mo, item, ledger, backorder, backorder_id)

    async def _completed(
        self,
        mo: dict[str, Any],
        item: Item,
        ledger: OrderLedger,
        backorder: bool,
        backorder_id: int | None,
    ) -> dict[int, dict[str, Any]]:
        effect: dict[str, Any] = {"mo": mo["name"], "done": True}
        if not backorder:
            ledger.done = True
            return {item.posting.pid: effect}
        base = (order_name(f"mo:{mo['name']}") or mo["name"]).rsplit("-", 1)[0]
        if backorder_id is None:
            rows = await self._client.search_read(
                "mrp.production",
                [["name", "=like", f"{base}-%"], ["state", "not in", ["done", "cancel"]]],
                ["name"],
                order="id",
                limit=1,
            )
            if not rows:
                ledger.done = True
                effect["backorder"] = None
                return {item.posting.pid: effect}
            backorder_id = int(rows[0]["id"])
        name = (await self._client.read("mrp.production", [backorder_id], ["name"]))[0]["name"]
        ledger.start_backorder(backorder_id, str(name))
        effect["backorder"] = name
        return {item.posting.pid: effect}

    # -- inventory -----------------------------------------------------------------------------

    async def _inventory(
        self,
        last: Item,
        step: Sequence[Item],
        intent: dict[str, Any],
        save_intent: SaveIntent,
    ) -> dict[int, dict[str, Any]]:
        """An applied count of the last event of the step (counts are absolute)."""
        product = await self._lookup.product(last.data["product"])
        location = await self._lookup.location(last.data["location"])
        marker = f"relay {last.event_id}"
        effect = {"counted": float(last.data["qty"]), "marker": marker}
        effects = {item.posting.pid: effect for item in step}
        label = "inventory_name" if self._client.version >= 19 else "name"
        if intent.get("inventory") == marker:
            done = await self._client.search(
                "stock.move",
                [["is_inventory", "=", True], [label, "=like", f"{marker}%"]],
                limit=1,
            )
            if done:
                return effects
        values: dict[str, Any] = {
            "product_id": product.id,
            "location_id": location,
            "inventory_quantity": float(last.data["qty"]),
        }
        if last.data.get("lot") and product.tracking != "none":
            lot = last.data["lot"]
            values["lot_id"] = (await self._lookup.lots(product, {lot}, create=True))[lot]
        await save_intent({"inventory": marker})
        quant = await self._client.create("stock.quant", values, context={"inventory_mode": True})
        result = await self._client.execute(
            "stock.quant",
            "action_apply_inventory",
            [quant],
            context={"inventory_mode": True, "inventory_name": marker},
        )
        if isinstance(result, dict) and result.get("res_model"):
            raise Refused(
                f"inventory count of {product.code} at {last.data['location']}: Odoo asks "
                f"for {result.get('name') or result['res_model']}; apply it in Odoo"
            )
        return effects


def _check_drift(
    mo: dict[str, Any], what: str, current: float, written: float | None, about: list[float]
) -> None:
    """Refuse when Odoo's consumed quantity is neither the relay's last write nor one it was
    about to write."""
    if written is None:
        return
    if same(current, written) or any(same(current, v) for v in about):
        return
    raise Drift(
        f"manufacturing order {mo['name']}: consumed {what} in Odoo is {current:g}, the relay "
        f"last wrote {written:g}; it was changed outside the relay. Set it back and replay"
    )
