"""The admin page over HTTP: who gets in, which POSTs are refused before anything changes, and
what each action does to the posting store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from cloud_relay.admin.page import ACTOR_COOKIE, FLASH_COOKIE, MAX_FORM_BYTES, SESSION_COOKIE
from cloud_relay.admin.session import AdminSessions, cross_site
from cloud_relay.config import StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxEvent, InboxStore
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.stats import PostingStats
from cloud_relay.posting.store import PostingStore
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER
from tests.cloud_relay.deadletters import Seeder, at
from tests.cloud_relay.support import register

BASE = "http://relay"
ODOO_MESSAGE = "Manufacturing order WH/MO/1 does not exist\nTraceback (most recent call last): ..."
WRITER = PostingStats(
    state="odoo refuses",
    last_error="MO not found",
    events_posted=12,
    steps=3,
    refusals=2,
    dead_lettered=1,
    transient_errors=0,
    odoo_calls=40,
    odoo_version="17.0",
    pending=1,
    dead_letters=1,
    parked_orders=1,
)


@dataclass
class Relay:
    """A relay app with its stores, a client, and the ids of the seeded dead letters."""

    inbox: InboxStore
    posting: PostingStore
    seed: Seeder
    client: httpx.AsyncClient
    metrics: RelayMetrics

    async def log_in(self) -> str:
        """Log the client in; the CSRF token of its forms."""
        response = await self.client.post("/admin/login", data={"token": ADMIN_TOKEN})
        assert response.status_code == 303, response.text
        return await self.csrf()

    async def csrf(self) -> str:
        page = await self.client.get("/admin")
        assert page.status_code == 200, page.text
        return csrf_of(page.text)

    async def untouched(self) -> None:
        """Nothing was decided: no audit entry and every dead letter still dead."""
        assert await self.posting.audit_log() == []
        assert {d.status for d in await self.posting.list_dead_letters(status=None)} == {"dead"}


def csrf_of(page: str) -> str:
    match = re.search(r"name='csrf' value='([^']+)'", page)
    assert match, "no CSRF field on the page"
    return match.group(1)


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[tuple[InboxStore, PostingStore]]:
    config = StoreConfig(url=f"sqlite:///{tmp_path}/relay.db")
    inbox, posting = open_inbox(config), open_posting_store(config)
    await inbox.open()
    await posting.open()
    try:
        yield inbox, posting
    finally:
        await posting.close()
        await inbox.close()


def client_of(
    stores: tuple[InboxStore, PostingStore],
    *,
    admin_token: str | None = ADMIN_TOKEN,
    with_writer: bool = True,
    base_url: str = BASE,
    metrics: RelayMetrics | None = None,
) -> httpx.AsyncClient:
    inbox, posting = stores
    app = build_app(
        inbox,
        TEST_SERVER,
        admin_token=admin_token,
        metrics=metrics,
        posting_store=posting if with_writer else None,
        writer_stats=(lambda: WRITER) if with_writer else None,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)


@pytest.fixture
async def relay(stores: tuple[InboxStore, PostingStore]) -> AsyncIterator[Relay]:
    metrics = RelayMetrics()
    async with client_of(stores, metrics=metrics) as client:
        yield Relay(stores[0], stores[1], Seeder(stores[1]), client, metrics)


async def test_without_a_token_the_page_is_closed(stores: tuple[InboxStore, PostingStore]) -> None:
    async with client_of(stores, admin_token=None) as client:
        for method, path in [
            ("GET", "/admin"),
            ("GET", "/admin/login"),
            ("POST", "/admin/login"),
            ("POST", "/admin/logout"),
            ("POST", "/admin/deadletters/1/discard"),
        ]:
            response = await client.request(method, path, data={"token": ""})
            assert response.status_code == 503, (method, path)
            assert "No admin token is configured" in response.text


async def test_a_browser_without_a_session_is_sent_to_log_in(relay: Relay) -> None:
    response = await relay.client.get("/admin")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    form = await relay.client.get("/admin/login")
    assert form.status_code == 200
    assert "type='password'" in form.text
    assert form.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]


async def test_the_bearer_token_opens_the_page_and_a_wrong_one_does_not(relay: Relay) -> None:
    wrong = await relay.client.get("/admin", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "Cloud relay admin" not in wrong.text.split("<h1>")[1]
    right = await relay.client.get("/admin", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert right.status_code == 200
    assert right.headers["cache-control"] == "no-store"
    assert "id='gateways'" in right.text


async def test_login_sets_a_strict_http_only_cookie(relay: Relay) -> None:
    wrong = await relay.client.post("/admin/login", data={"token": "guess"})
    assert wrong.status_code == 401
    assert "That is not the admin token." in wrong.text
    assert SESSION_COOKIE not in relay.client.cookies

    right = await relay.client.post("/admin/login", data={"token": ADMIN_TOKEN})

    assert right.status_code == 303
    assert right.headers["location"] == "/admin"
    cookie = right.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert ADMIN_TOKEN not in cookie
    for attribute in ("HttpOnly", "Path=/admin", "SameSite=strict", "Max-Age=43200"):
        assert attribute in cookie
    assert "Secure" not in cookie
    assert (await relay.client.get("/admin")).status_code == 200
    assert (await relay.client.get("/admin/login")).headers["location"] == "/admin"


async def test_over_https_the_cookie_is_secure(stores: tuple[InboxStore, PostingStore]) -> None:
    async with client_of(stores, base_url="https://relay") as client:
        response = await client.post("/admin/login", data={"token": ADMIN_TOKEN})
    assert "Secure" in response.headers["set-cookie"]
    async with client_of(stores) as client:
        behind_proxy = await client.post(
            "/admin/login",
            data={"token": ADMIN_TOKEN},
            headers={"Origin": "https://relay", "Host": "relay"},
        )
    assert behind_proxy.status_code == 303
    assert "Secure" in behind_proxy.headers["set-cookie"]


async def test_forged_and_expired_sessions_are_refused(relay: Relay) -> None:
    for value in ("", "1.2.3", "x", f"{10**12}.abc.def", "1.a.b.c"):
        relay.client.cookies.set(SESSION_COOKIE, value, path="/admin")
        assert (await relay.client.get("/admin")).status_code == 303, value
    clock = [1_000_000.0]
    sessions = AdminSessions(ADMIN_TOKEN, max_age_seconds=60, clock=lambda: clock[0])
    value = sessions.issue()
    assert sessions.session(value) is not None
    assert AdminSessions("another token").session(value) is None
    issued, nonce, mac = value.split(".")
    assert sessions.session(f"{int(issued) - 1}.{nonce}.{mac}") is None
    clock[0] += 61
    assert sessions.session(value) is None


async def test_posts_without_the_sessions_csrf_token_are_refused(relay: Relay) -> None:
    dead = await relay.seed.dead("WH/MO/1")
    await relay.log_in()
    other_session = AdminSessions(ADMIN_TOKEN)
    other = other_session.session(other_session.issue())
    assert other is not None
    foreign = other_session.csrf_token(other)
    form = {"actor": "ana", "reason": "dup", "order": "mo:WH/MO/1"}
    for path in (
        f"/admin/deadletters/{dead}/discard",
        f"/admin/deadletters/{dead}/replay",
        "/admin/orders/replay",
        "/admin/logout",
    ):
        for csrf in (None, "", "x", foreign):
            data = form if csrf is None else {**form, "csrf": csrf}
            response = await relay.client.post(path, data=data)
            assert response.status_code == 403, (path, csrf)
            assert "CSRF token" in response.text
    await relay.untouched()
    assert (await relay.client.get("/admin")).status_code == 200, "still logged in"


async def test_cross_site_posts_are_refused_even_with_the_token(relay: Relay) -> None:
    dead = await relay.seed.dead("WH/MO/1")
    csrf = await relay.log_in()
    form = {"csrf": csrf, "actor": "mallory", "reason": "gone"}
    for headers in (
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site", "Origin": "http://relay:8081"},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
    ):
        response = await relay.client.post(
            f"/admin/deadletters/{dead}/discard", data=form, headers=headers
        )
        assert response.status_code == 403, headers
        assert "sent from another site" in response.text
        login = await relay.client.post(
            "/admin/login", data={"token": ADMIN_TOKEN}, headers=headers
        )
        assert login.status_code == 403, headers
    await relay.untouched()

    same_origin = await relay.client.post(
        f"/admin/deadletters/{dead}/discard",
        data={**form, "actor": "ana"},
        headers={"Sec-Fetch-Site": "same-origin", "Origin": BASE},
    )
    assert same_origin.status_code == 303
    letter = await relay.posting.get_dead_letter(dead)
    assert letter is not None and letter.status == "discarded"


def test_cross_site_verdicts() -> None:
    assert cross_site({}) is None
    assert cross_site({"sec-fetch-site": "same-origin"}) is None
    assert cross_site({"sec-fetch-site": "none"}) is None
    assert cross_site({"origin": "https://relay.example", "host": "relay.example"}) is None
    assert cross_site({"origin": "http://relay:8000", "host": "RELAY:8000"}) is None
    assert cross_site({"sec-fetch-site": "same-site"}) == "Sec-Fetch-Site is 'same-site'"
    assert cross_site({"origin": "http://relay:8001", "host": "relay:8000"}) is not None


async def test_posts_without_a_session_are_refused(relay: Relay) -> None:
    dead = await relay.seed.dead("WH/MO/1")
    response = await relay.client.post(
        f"/admin/deadletters/{dead}/discard", data={"csrf": "x", "actor": "a", "reason": "r"}
    )
    assert response.status_code == 401
    assert "/admin/login" in response.text
    await relay.untouched()


async def test_discard_needs_a_reason_and_a_name(relay: Relay) -> None:
    dead = await relay.seed.dead("WH/MO/1")
    csrf = await relay.log_in()
    path = f"/admin/deadletters/{dead}/discard"
    for data, said in (
        ({"actor": "ana"}, "a discard needs a reason"),
        ({"actor": "ana", "reason": "   "}, "a discard needs a reason"),
        ({"reason": "dup"}, "give your name"),
        ({"actor": "a" * 201, "reason": "dup"}, "give your name"),
        ({"actor": "ana", "reason": "r" * 2001}, "a reason is at most 2000 characters"),
        ({"actor": "ana", "reason": "x\x00"}, "NUL"),
    ):
        response = await relay.client.post(path, data={**data, "csrf": csrf})
        assert response.status_code == 303, data
        page = (await relay.client.get("/admin")).text
        assert "class='flash bad'" in page
        assert said in page, (data, page)
    await relay.untouched()


async def test_discard_replay_and_replay_an_order(relay: Relay) -> None:
    a1 = await relay.seed.dead("WH/MO/1", ODOO_MESSAGE)
    b1 = await relay.seed.dead("WH/MO/2")
    b2 = await relay.seed.dead("WH/MO/2")
    c1 = await relay.seed.dead("WH/MO/3")
    csrf = await relay.log_in()

    discarded = await relay.client.post(
        f"/admin/deadletters/{a1}/discard",
        data={"csrf": csrf, "actor": " ana ", "reason": "scanned twice"},
    )
    assert discarded.status_code == 303
    assert discarded.headers["location"] == "/admin"
    assert unquote(relay.client.cookies[ACTOR_COOKIE]) == "ana"
    page = await relay.client.get("/admin")
    assert "Discarded dead letter 1 (WH/MO/1): scanned twice" in page.text
    assert "value='ana'" in page.text, "the name is remembered for the next form"
    assert FLASH_COOKIE not in relay.client.cookies, "the message is shown once"
    letter = await relay.posting.get_dead_letter(a1)
    assert letter is not None
    assert (letter.status, letter.resolved_by, letter.resolution) == (
        "discarded",
        "ana (admin page)",
        "scanned twice",
    )

    replayed = await relay.client.post(
        f"/admin/deadletters/{c1}/replay", data={"csrf": csrf, "actor": "ana"}
    )
    assert replayed.status_code == 303
    assert "Replayed dead letter 4 (WH/MO/3)" in (await relay.client.get("/admin")).text
    assert len(await relay.posting.pending("mo:WH/MO/3", 10)) == 1

    assert "Replay all 2 dead letters of WH/MO/2" in (await relay.client.get("/admin")).text
    bulk = await relay.client.post(
        "/admin/orders/replay",
        data={"csrf": csrf, "actor": "bo", "order": "mo:WH/MO/2", "reason": "MO created"},
    )
    assert bulk.status_code == 303
    assert "Replayed 2 dead letters of WH/MO/2" in (await relay.client.get("/admin")).text
    assert len(await relay.posting.pending("mo:WH/MO/2", 10)) == 2

    again = await relay.client.post(
        f"/admin/deadletters/{a1}/replay", data={"csrf": csrf, "actor": "bo"}
    )
    assert again.status_code == 303
    assert "Dead letter 1 was not replayed: discarded." in (await relay.client.get("/admin")).text
    missing = await relay.client.post(
        "/admin/deadletters/99/discard", data={"csrf": csrf, "actor": "bo", "reason": "x"}
    )
    assert missing.status_code == 303
    assert "Nothing was done: no dead letter 99." in (await relay.client.get("/admin")).text

    audit = await relay.posting.audit_log()
    assert [(e.action, e.dead_letter_id, e.actor) for e in audit] == [
        ("replay", b2, "bo (admin page)"),
        ("replay", b1, "bo (admin page)"),
        ("replay", c1, "ana (admin page)"),
        ("discard", a1, "ana (admin page)"),
    ]


async def test_the_bearer_token_may_post_with_its_own_csrf_token(relay: Relay) -> None:
    dead = await relay.seed.dead("WH/MO/1")
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    csrf = csrf_of((await relay.client.get("/admin", headers=auth)).text)
    refused = await relay.client.post(
        f"/admin/deadletters/{dead}/replay", data={"actor": "ci"}, headers=auth
    )
    assert refused.status_code == 403
    done = await relay.client.post(
        f"/admin/deadletters/{dead}/replay", data={"actor": "ci", "csrf": csrf}, headers=auth
    )
    assert done.status_code == 303
    assert [e.actor for e in await relay.posting.audit_log()] == ["ci (admin page)"]


async def test_the_page_shows_what_waits(relay: Relay) -> None:
    gateway = await register(relay.inbox, "line-1")
    events = [
        InboxEvent(f"00000000-0000-7000-9000-{n:012d}", n, "production.reported", at(n), b"{}")
        for n in (1, 2, 3)
    ]
    await relay.inbox.store_batch("line-1", gateway.key_id, 1, events)
    old = await register(relay.inbox, "line-1")
    await relay.inbox.revoke_key(old.key_id)
    relay.metrics.observe_gateway("line-1", last_seq=5, acked_seq=3)
    await register(relay.inbox, "line-2")
    await relay.seed.queue("WH/MO/7")
    await relay.posting.park("mo:WH/MO/7", "Lot L-9 unknown", at(65), at(60))
    await relay.seed.dead("WH/MO/1", ODOO_MESSAGE)
    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    page = (await relay.client.get("/admin", headers=auth)).text

    assert "<title>1 dead letter, 1 parked order: cloud relay admin</title>" in page
    assert "http-equiv='refresh'" not in page, "the page with forms never reloads by itself"
    assert "<span class='bad'>odoo refuses</span>" in page
    assert "<th>Odoo version</th><td>17.0</td>" in page
    line1 = page.split("<b>line-1</b>")[1].split("</tr>")[0]
    assert "<td>3</td><td><span class='warn'>2</span></td>" in line1, "acked 3, lag 2"
    assert f"<code>{gateway.key_id}</code>" in line1
    assert f"<code class='revoked'>{old.key_id}</code>" in line1
    line2 = page.split("<b>line-2</b>")[1].split("</tr>")[0]
    assert "<td>never</td><td>0</td><td><span class='none'>not seen here</span></td>" in line2
    parked = page.split("id='parked'")[1].split("</section>")[0]
    assert "<b>WH/MO/7</b>" in parked and "Lot L-9 unknown" in parked
    dead = page.split("id='deadletters'")[1].split("</section>")[0]
    assert "Odoo's message: Manufacturing order WH/MO/1 does not exist…" in dead
    assert "<pre>Manufacturing order WH/MO/1 does not exist\nTraceback" in dead
    assert "&#34;order&#34;: &#34;WH/MO/1&#34;" in dead  # the event JSON, escaped
    assert "Replay all" not in dead, "one dead letter has its own Replay"
    assert "No replay or discard yet." in page

    watch = (await relay.client.get("/admin?watch=1", headers=auth)).text
    assert "<meta http-equiv='refresh' content='10'>" in watch
    assert "/discard" not in watch and "/replay" not in watch


async def test_without_a_writer_the_page_says_so_and_actions_answer_503(
    stores: tuple[InboxStore, PostingStore],
) -> None:
    async with client_of(stores, with_writer=False) as client:
        await client.post("/admin/login", data={"token": ADMIN_TOKEN})
        page = await client.get("/admin")
        assert "posting to Odoo is off in this relay (no [odoo] section)" in page.text
        assert "id='deadletters'" not in page.text
        response = await client.post(
            "/admin/deadletters/1/discard",
            data={"csrf": csrf_of(page.text), "actor": "ana", "reason": "x"},
        )
        assert response.status_code == 503


async def test_logout_ends_the_session_in_the_browser(relay: Relay) -> None:
    csrf = await relay.log_in()
    response = await relay.client.post("/admin/logout", data={"csrf": csrf})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login"
    assert SESSION_COOKIE not in relay.client.cookies
    assert (await relay.client.get("/admin")).status_code == 303


async def test_unreadable_or_huge_forms_are_refused(relay: Relay) -> None:
    dead = await relay.seed.dead("WH/MO/1")
    await relay.log_in()
    path = f"/admin/deadletters/{dead}/discard"
    huge = await relay.client.post(path, content=b"a=" + b"x" * MAX_FORM_BYTES)
    assert huge.status_code == 413
    latin1 = await relay.client.post(path, content=b"reason=caf\xe9")
    assert latin1.status_code == 400
    await relay.untouched()


async def test_the_page_is_not_in_the_api_document(relay: Relay) -> None:
    document = (await relay.client.get("/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/admin")]
