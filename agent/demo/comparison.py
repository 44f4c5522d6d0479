"""The demo's verdict: the line's own tally beside the relay's stored events and Odoo's records,
per order, and the dead letters if Odoo refused anything for good."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from agent.demo.odoo import OdooTarget, dead_letter_listing, odoo_report, writer_figures
from agent.demo.progress import Watch

#: Which tally each counted event adds to.
_KINDS = {"production.reported": "good", "scrap.reported": "scrap", "material.consumed": "consumed"}
#: The report's figure for each tally.
_ODOO_FIELD = {"good": "produced", "scrap": "scrapped", "consumed": "consumed"}


async def relay_totals(watch: Watch) -> dict[str, Counter[str]]:
    """Per tally and order, the quantities in the events the relay stored."""
    totals: dict[str, Counter[str]] = {kind: Counter() for kind in _ODOO_FIELD}
    totals["telemetry"] = Counter()
    after = 0
    while True:
        resp = await watch.client.get(
            f"http://127.0.0.1:{watch.relay_port}/v1/gateways/{watch.gateway_id}/events",
            params={"after_seq": after, "limit": 1000},
            headers=watch.admin,
        )
        resp.raise_for_status()
        events = resp.json()["events"]
        if not events:
            return totals
        for item in events:
            event = item.get("event", item)
            kind = _KINDS.get(event["type"])
            if event["type"] == "signal.sampled":
                totals["telemetry"][event["data"].get("name", "")] += 1
            if kind:
                totals[kind][event["data"]["order"]] += event["data"]["qty"]
            after = max(after, int(event["seq"]))


async def compare(watch: Watch, target: OdooTarget, component: str) -> bool:
    """Print line, relay and Odoo per order and tally; whether all three agree everywhere."""
    tally = watch.tally
    relay = await relay_totals(watch)
    odoo = await odoo_report(target, tally.orders, component)
    line_side = {"good": tally.good, "scrap": tally.scrap, "consumed": tally.consumed}
    width = max([len("order"), *(len(o) for o in tally.orders)]) + 2
    print(f"\n{'order':<{width}}{'what':<10}{'line':>8}{'relay':>8}{'odoo':>8}")
    ok = True
    for order in tally.orders:
        for what, field in _ODOO_FIELD.items():
            made, stored = line_side[what][order], relay[what][order]
            posted = float(odoo.get(order, {}).get(field, 0.0))
            if what == "consumed" and not made and not stored and not posted:
                continue
            agree = made == stored == posted
            ok = ok and agree
            mark = "" if agree else "  MISMATCH"
            print(f"{order:<{width}}{what:<10}{made:>8g}{stored:>8g}{posted:>8g}{mark}")
    print(
        f"\nParts and scrap come over OPC UA, {component} consumption over MQTT; in Odoo they are"
        " each MO's quantity producing, its validated scraps and its picked component move."
    )
    sampled = sum(relay["telemetry"].values())
    if sampled:
        print(
            f"The relay also stored {sampled} temperature readings (signal.sampled telemetry): "
            "kept at the relay, never posted to Odoo, which is why it stored more events than "
            "the writer posted."
        )
    print(
        "totals agree: every count the line made is in Odoo exactly once"
        if ok
        else "totals DISAGREE"
    )
    return ok


async def report_dead_letters(watch: Watch, relay_config: Path) -> int:
    """How many events Odoo refused for good; lists them as ``deadletters list`` does."""
    figures = await writer_figures(watch.client, watch.relay_port)
    dead = figures.dead if figures else 0
    if dead:
        print(f"\n{dead} dead letter(s): events Odoo refused for good")
        print(await dead_letter_listing(relay_config))
    return dead
