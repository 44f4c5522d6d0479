"""The admin page as an operator uses it, in a real headless Chromium, against a relay served by
uvicorn on loopback.

State is seeded through the stores' own APIs (a gateway with a live and a revoked key, stored
events, a parked order, dead letters with Odoo's message); the browser logs in, reads each
section, discards one dead letter and replays another through the forms, and finds both in
the audit log. A page of another origin that posts the same form, even with a leaked CSRF
token, is refused. Screenshots are saved under the test's ``tmp_path`` (the path is printed).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pytest
from playwright.async_api import Page
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cloud_relay.config import StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxEvent, InboxStore
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.stats import PostingStats
from cloud_relay.posting.store import PostingStore
from tests.browser import PageFactory, browser_pages, screenshot
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER, serve
from tests.cloud_relay.deadletters import Seeder, at
from tests.cloud_relay.support import register

__all__ = ["browser_pages"]

ODOO_MESSAGE = (
    "Odoo refused stock.move.create: ValidationError\n"
    "Manufacturing order WH/MO/00042 does not exist or has been cancelled.\n"
    "  (record: mrp.production, operation: read)"
)
WHITE, GREEN = "rgb(255, 255, 255)", "rgb(27, 127, 59)"
PARK_REASON = "Lot L-2025-07 of product P-100 is unknown in Odoo"
WRITER = PostingStats(
    state="posting",
    last_error=None,
    events_posted=1234,
    steps=80,
    refusals=3,
    dead_lettered=2,
    transient_errors=0,
    odoo_calls=400,
    odoo_version="17.0+e",
    pending=1,
    dead_letters=2,
    parked_orders=1,
)


@dataclass
class Relay:
    """A relay serving the admin page on loopback, with its seeded stores."""

    url: str
    inbox: InboxStore
    posting: PostingStore
    live_key: str
    revoked_key: str
    odoo_refused: int
    bad_qty: int


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    config = StoreConfig(url=f"sqlite:///{tmp_path}/relay.db")
    inbox, posting = open_inbox(config), open_posting_store(config)
    await inbox.open()
    await posting.open()
    try:
        gateway = await register(inbox, "line-1")
        events = [
            InboxEvent(f"00000000-0000-7000-9000-{n:012d}", n, "production.reported", at(n), b"{}")
            for n in (1, 2, 3)
        ]
        await inbox.store_batch("line-1", gateway.key_id, 1, events)
        old = await register(inbox, "line-1")
        await inbox.revoke_key(old.key_id)
        metrics = RelayMetrics()
        metrics.observe_gateway("line-1", last_seq=5, acked_seq=3)

        seed = Seeder(posting)
        await seed.queue("WH/MO/00007")
        await posting.park("mo:WH/MO/00007", PARK_REASON, at(70), at(60))
        odoo_refused = await seed.dead("WH/MO/00042", ODOO_MESSAGE, attempts=3)
        bad_qty = await seed.dead("WH/MO/00043", "Quantity must be positive")

        app = build_app(
            inbox,
            TEST_SERVER,
            admin_token=ADMIN_TOKEN,
            metrics=metrics,
            posting_store=posting,
            writer_stats=lambda: WRITER,
        )
        async with serve(app) as url:
            yield Relay(url, inbox, posting, gateway.key_id, old.key_id, odoo_refused, bad_qty)
    finally:
        await posting.close()
        await inbox.close()


async def log_in(new_page: PageFactory, relay: Relay, shots: Path) -> Page:
    """Open /admin, get sent to the form, try a wrong token, then the right one."""
    page = await new_page()
    await page.goto(relay.url + "/admin")
    assert page.url == relay.url + "/admin/login"
    await page.fill("#token", "a guess")
    async with page.expect_navigation() as wrong:
        await page.click("button[type=submit]")
    assert (await wrong.value).status == 401
    assert await page.inner_text("#flash") == "That is not the admin token."
    await screenshot(page, shots / "1-login-refused.png")
    await page.fill("#token", ADMIN_TOKEN)
    async with page.expect_navigation(url=relay.url + "/admin") as right:
        await page.click("button[type=submit]")
    assert (await right.value).status == 200
    return page


async def card(page: Page, ident: str) -> dict[str, str]:
    """A label/value table as a person reads it: label -> what it says."""
    rows = page.locator(f"#{ident} tr")
    read = {}
    for i in range(await rows.count()):
        row = rows.nth(i)
        read[await row.locator("th").inner_text()] = await row.locator("td").inner_text()
    return read


async def table(page: Page, ident: str) -> list[dict[str, str]]:
    """A list section's rows as column title -> cell text."""
    head = await page.locator(f"#{ident} thead th").all_inner_texts()
    rows = page.locator(f"#{ident} tbody tr")
    read = []
    for i in range(await rows.count()):
        cells = await rows.nth(i).locator("td").all_inner_texts()
        read.append(dict(zip(head, cells, strict=True)))
    return read


async def submit(page: Page, form: str, *, expect_url: str | None = None) -> int:
    """Click ``form``'s button and wait for the page it leads to; that page's status."""
    async with page.expect_navigation(url=expect_url) as navigation:
        await page.locator(form).locator("button[type=submit]").click()
    response = await navigation.value
    assert response is not None
    return response.status


async def test_operator_reads_the_page_then_discards_and_replays(
    browser_pages: PageFactory, relay: Relay, tmp_path: Path
) -> None:
    shots = tmp_path / "screens"
    page = await log_in(browser_pages, relay, shots)
    await screenshot(page, shots / "2-overview.png")

    assert await page.title() == "2 dead letters, 1 parked order: cloud relay admin"
    status = await card(page, "status")
    assert status["Odoo writer"] == "posting"
    assert status["Odoo version"] == "17.0+e"
    assert status["Events posted"] == "1234 since start"
    assert (status["Pending events"], status["Parked orders"], status["Dead letters"]) == (
        "1",
        "1",
        "2",
    )

    [gateway] = await table(page, "gateways")
    assert gateway["Gateway"] == "line-1"
    # Seen moments ago: under a second reads "just now".
    assert re.search(r"UTC \((just now|\d.* ago)\)$", gateway["Last seen"]), gateway["Last seen"]
    assert (gateway["Acked seq"], gateway["Lag"]) == ("3", "2")
    live, revoked = gateway["Keys"].splitlines()
    assert live.startswith(f"{relay.live_key} added ")
    assert revoked.startswith(f"{relay.revoked_key} revoked ")
    struck = page.locator("#gateways code.revoked")
    assert await struck.evaluate("e => getComputedStyle(e).textDecorationLine") == "line-through"

    [parked] = await table(page, "parked")
    assert parked["Order"] == "WH/MO/00007"
    assert parked["Reason"] == PARK_REASON
    assert parked["Parked since"].startswith("2025-03-01 09:00:00 UTC (")
    assert parked["Attempts"] == "1"
    assert parked["Next attempt"] == "2025-03-01 09:10:00 UTC (due)"
    assert parked["Pending events"] == "1"

    refused = page.locator(f"#dl-{relay.odoo_refused}")
    details = await card(page, f"dl-{relay.odoo_refused}")
    assert details["Order"] == "WH/MO/00042"
    assert details["Event type"] == "production.reported"
    assert details["Attempts"] == "3"
    message = refused.locator("details.odoo")
    summary = await message.locator("summary").inner_text()
    assert summary == "Odoo's message: Odoo refused stock.move.create: ValidationError…"
    assert not await message.locator("pre").is_visible(), "folded until asked for"
    await message.locator("summary").click()
    assert await message.locator("pre").inner_text() == ODOO_MESSAGE
    await refused.locator("details.event summary").click()
    assert '"order": "WH/MO/00042"' in await refused.locator("details.event pre").inner_text()
    await screenshot(page, shots / "3-odoo-message-open.png")

    discard = f"#dl-{relay.odoo_refused} form[action$='/discard']"
    await page.fill(f"{discard} input[name=actor]", "Ana")
    await page.fill(f"{discard} input[name=reason]", "MO cancelled in Odoo; event scanned twice")
    assert await submit(page, discard, expect_url=relay.url + "/admin") == 200
    assert await page.inner_text("#flash") == (
        f"Discarded dead letter {relay.odoo_refused} (WH/MO/00042): "
        "MO cancelled in Odoo; event scanned twice"
    )
    assert await page.locator(f"#dl-{relay.odoo_refused}").count() == 0
    flash = page.locator("#flash")
    colours = "e => [getComputedStyle(e).color, getComputedStyle(e).backgroundColor]"
    assert await flash.evaluate(colours) == [WHITE, GREEN]
    await screenshot(page, shots / "4-discarded.png")

    replay = f"#dl-{relay.bad_qty} form[action$='/replay']"
    assert await page.input_value(f"{replay} input[name=actor]") == "Ana", "name remembered"
    await page.fill(f"{replay} input[name=reason]", "quantity fixed at the line")
    assert await submit(page, replay, expect_url=relay.url + "/admin") == 200
    assert (await page.inner_text("#flash")).startswith(
        f"Replayed dead letter {relay.bad_qty} (WH/MO/00043): its event is queued again"
    )
    assert await page.title() == "1 parked order: cloud relay admin"
    assert await page.inner_text("#deadletters p") == "No dead letter waits for a decision."
    await screenshot(page, shots / "5-replayed.png")

    audit = await table(page, "audit")
    assert [(a["Who"], a["Action"], a["Dead letter"], a["Order"], a["Reason"]) for a in audit] == [
        (
            "Ana (admin page)",
            "replay",
            str(relay.bad_qty),
            "WH/MO/00043",
            "quantity fixed at the line",
        ),
        (
            "Ana (admin page)",
            "discard",
            str(relay.odoo_refused),
            "WH/MO/00042",
            "MO cancelled in Odoo; event scanned twice",
        ),
    ]
    assert [p.type for p in await relay.posting.pending("mo:WH/MO/00043", 10)] == [
        "production.reported"
    ]
    gone = await relay.posting.get_dead_letter(relay.odoo_refused)
    assert gone is not None and gone.status == "discarded"

    await page.reload()
    assert await page.locator("#flash").count() == 0, "a message is shown once"
    await page.goto(relay.url + "/admin?watch=1")
    assert await page.locator("meta[http-equiv=refresh]").get_attribute("content") == "10"
    assert await page.locator("form[action$='/replay'], form[action$='/discard']").count() == 0
    await screenshot(page, shots / "6-watch.png")


async def test_a_form_posted_from_another_origin_is_refused(
    browser_pages: PageFactory, relay: Relay, tmp_path: Path
) -> None:
    shots = tmp_path / "screens"
    page = await log_in(browser_pages, relay, shots)
    # The worst case: the attacker somehow knows this session's CSRF token.
    leaked = await page.locator("input[name=csrf]").first.get_attribute("value")
    assert leaked
    target = f"{relay.url}/admin/deadletters/{relay.bad_qty}/discard"

    async def attacker_page(request: Request) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>Win a prize</title>"
            f"<form method='post' action='{escape(target)}'>"
            f"<input type='hidden' name='csrf' value='{escape(leaked)}'>"
            "<input type='hidden' name='actor' value='mallory'>"
            "<input type='hidden' name='reason' value='gone'>"
            "<button type='submit'>Claim</button></form>"
        )

    attacker = Starlette(routes=[Route("/", attacker_page)])
    async with serve(attacker) as other_origin:
        assert other_origin != relay.url
        await page.goto(other_origin + "/")
        assert await submit(page, "form") == 403
    assert "sent from another site" in await page.inner_text("#notice")
    await screenshot(page, shots / "7-cross-origin-refused.png")

    letter = await relay.posting.get_dead_letter(relay.bad_qty)
    assert letter is not None and letter.status == "dead"
    assert await relay.posting.audit_log() == []
    await page.goto(relay.url + "/admin")
    assert await page.locator(f"#dl-{relay.bad_qty}").count() == 1, "still logged in, unchanged"
