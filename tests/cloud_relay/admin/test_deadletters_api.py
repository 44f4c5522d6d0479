"""The admin API's dead-letter, audit and order routes, behind the admin bearer token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.factory import open_inbox
from cloud_relay.inbox.store import InboxStore
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.store import PostingStore
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER
from tests.cloud_relay.deadletters import Seeder, at

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ACTION = {"actor": "ana", "reason": "MO created in Odoo"}
ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/deadletters", None),
    ("GET", "/v1/deadletters/1", None),
    ("POST", "/v1/deadletters/1/replay", ACTION),
    ("POST", "/v1/deadletters/replay", {**ACTION, "all": True}),
    ("POST", "/v1/deadletters/1/discard", ACTION),
    ("GET", "/v1/audit", None),
    ("GET", "/v1/orders", None),
]


@dataclass
class Admin:
    """An admin client on a relay app, with the posting store behind it."""

    store: PostingStore
    seed: Seeder
    client: httpx.AsyncClient

    async def call(
        self, method: str, path: str, body: dict[str, Any] | None = None, **kwargs: Any
    ) -> httpx.Response:
        kwargs.setdefault("headers", AUTH)
        return await self.client.request(method, path, json=body, **kwargs)

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.call("GET", path, params=params)
        assert response.status_code == 200, response.text
        return response.json()


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
) -> httpx.AsyncClient:
    inbox, posting = stores
    app = build_app(
        inbox,
        TEST_SERVER,
        admin_token=admin_token,
        posting_store=posting if with_writer else None,
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://relay")


@pytest.fixture
async def admin(stores: tuple[InboxStore, PostingStore]) -> AsyncIterator[Admin]:
    async with client_of(stores) as client:
        yield Admin(stores[1], Seeder(stores[1]), client)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_every_route_needs_the_token(
    stores: tuple[InboxStore, PostingStore],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    async with client_of(stores) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.request(method, path, json=body, headers=headers)
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json() == {"error": "a valid bearer token is required"}
    async with client_of(stores, admin_token=None) as client:
        closed = await client.request(method, path, json=body, headers=AUTH)
        assert closed.status_code == 503
        assert closed.json() == {"error": "admin token not configured"}
    assert await stores[1].audit_log() == []


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
async def test_without_a_writer_the_routes_answer_503(
    stores: tuple[InboxStore, PostingStore],
    method: str,
    path: str,
    body: dict[str, Any] | None,
) -> None:
    async with client_of(stores, with_writer=False) as client:
        response = await client.request(method, path, json=body, headers=AUTH)
    assert response.status_code == 503
    assert response.json() == {"error": "no Odoo writer configured"}


async def test_list_and_get_dead_letters(admin: Admin) -> None:
    a1 = await admin.seed.dead("WH/MO/1", "Manufacturing order WH/MO/1 does not exist")
    b1 = await admin.seed.dead("WH/MO/2")
    a2 = await admin.seed.dead("WH/MO/1")
    await admin.call("POST", f"/v1/deadletters/{b1}/discard", {"actor": "ana", "reason": "dup"})

    listed = (await admin.get("/v1/deadletters"))["dead_letters"]
    assert [d["id"] for d in listed] == [a1, a2]
    first = listed[0]
    assert first["error"] == "Manufacturing order WH/MO/1 does not exist"
    assert (first["order"], first["order_key"], first["status"]) == (
        "WH/MO/1",
        "mo:WH/MO/1",
        "dead",
    )
    assert first["event"]["data"]["order"] == "WH/MO/1"
    assert first["dead_at"] == "2025-03-01T09:02:00Z"
    assert first["raw_body"] is None

    def ids(page: Any) -> list[int]:
        return [d["id"] for d in page["dead_letters"]]

    assert ids(await admin.get("/v1/deadletters", status="all")) == [a1, b1, a2]
    assert ids(await admin.get("/v1/deadletters", status="discarded")) == [b1]
    assert ids(await admin.get("/v1/deadletters", order="WH/MO/2", status="all")) == [b1]
    assert ids(await admin.get("/v1/deadletters", order="mo:WH/MO/1")) == [a1, a2]
    assert await admin.get(f"/v1/deadletters/{a1}") == first
    for params in ({"status": "open"}, {"order": ""}, {"order": "  "}):
        bad = await admin.call("GET", "/v1/deadletters", params=params)
        assert bad.status_code == 422, params
        assert "detail" in bad.json()


async def test_unknown_or_impossible_ids(admin: Admin) -> None:
    missing = await admin.call("GET", "/v1/deadletters/999")
    assert missing.status_code == 404
    assert missing.json() == {"error": "no dead letter 999"}
    for action in ("replay", "discard"):
        response = await admin.call("POST", f"/v1/deadletters/999/{action}", ACTION)
        assert response.status_code == 404
        assert response.json() == {"error": "no dead letter 999"}
    for bad in ("0", "-1", "x", str(2**63)):
        assert (await admin.call("GET", f"/v1/deadletters/{bad}")).status_code == 422
    not_a_letter = await admin.call("GET", "/v1/deadletters/replay")
    assert not_a_letter.status_code == 405
    assert not_a_letter.headers["allow"] == "POST"


async def test_replay_one(admin: Admin) -> None:
    dead = await admin.seed.dead("WH/MO/1")
    behind = await admin.seed.queue("WH/MO/1")

    response = await admin.call("POST", f"/v1/deadletters/{dead}/replay", ACTION)

    assert response.status_code == 200, response.text
    shown = response.json()
    assert shown["id"] == dead and shown["status"] == "replayed"
    assert shown["resolved_by"] == "ana (admin api)"
    assert shown["resolution"] == "MO created in Odoo"
    pending = await admin.store.pending("mo:WH/MO/1", 10)
    assert [p.event_id for p in pending] == [behind.event_id, shown["event_id"]]
    again = await admin.call("POST", f"/v1/deadletters/{dead}/replay", {"actor": "bo"})
    assert again.status_code == 409
    assert again.json() == {"error": f"dead letter {dead} is already replayed by ana (admin api)"}
    [entry] = (await admin.get("/v1/audit"))["entries"]
    assert (entry["actor"], entry["action"], entry["dead_letter_id"]) == (
        "ana (admin api)",
        "replay",
        dead,
    )


async def test_replay_an_order_or_all(admin: Admin) -> None:
    a1 = await admin.seed.dead("WH/MO/1")
    b1 = await admin.seed.dead("WH/MO/2")
    a2 = await admin.seed.dead("WH/MO/1")

    by_order = await admin.call(
        "POST", "/v1/deadletters/replay", {"actor": "ana", "order": "WH/MO/1"}
    )
    assert by_order.status_code == 200, by_order.text
    assert [r["id"] for r in by_order.json()["replayed"]] == [a1, a2]
    assert by_order.json()["skipped"] == []
    assert by_order.json()["replayed"][0]["order_key"] == "mo:WH/MO/1"

    everything = await admin.call(
        "POST", "/v1/deadletters/replay", {"actor": "ana", "all": True, "reason": None}
    )
    assert everything.json() == {
        "replayed": [
            {
                "id": b1,
                "order_key": "mo:WH/MO/2",
                "event_id": everything.json()["replayed"][0]["event_id"],
            }
        ],
        "skipped": [],
    }
    nothing = await admin.call("POST", "/v1/deadletters/replay", {"actor": "ana", "all": True})
    assert nothing.json() == {"replayed": [], "skipped": []}


@pytest.mark.parametrize(
    "body",
    [
        {"actor": "ana"},
        {"actor": "ana", "all": False},
        {"actor": "ana", "order": "WH/MO/1", "all": True},
        {"actor": "ana", "order": " ", "all": False},
        {"actor": "", "all": True},
        {"actor": "  ", "all": True},
        {"actor": "a" * 201, "all": True},
        {"all": True},
        {"actor": "ana", "all": True, "reason": "x\u0000"},
        {"actor": "ana", "all": True, "extra": 1},
        {"actor": "ana", "all": 1},
        {"actor": 7, "all": True},
    ],
)
async def test_replay_many_refuses_bad_bodies(admin: Admin, body: dict[str, Any]) -> None:
    await admin.seed.dead("WH/MO/1")
    response = await admin.call("POST", "/v1/deadletters/replay", body)
    assert response.status_code == 422, response.text
    assert await admin.store.audit_log() == []


async def test_discard(admin: Admin) -> None:
    dead = await admin.seed.dead("WH/MO/1")
    path = f"/v1/deadletters/{dead}/discard"
    for body in ({"actor": "ana"}, {"actor": "ana", "reason": "  "}, {"reason": "dup"}, None):
        assert (await admin.call("POST", path, body)).status_code == 422, body

    response = await admin.call("POST", path, {"actor": "ana", "reason": "scanned twice"})

    assert response.status_code == 200, response.text
    shown = response.json()
    assert (shown["status"], shown["resolution"], shown["resolved_by"]) == (
        "discarded",
        "scanned twice",
        "ana (admin api)",
    )
    again = await admin.call("POST", path, {"actor": "bo", "reason": "again"})
    assert again.status_code == 409
    assert "already discarded" in again.json()["error"]
    replay = await admin.call("POST", f"/v1/deadletters/{dead}/replay", {"actor": "bo"})
    assert replay.status_code == 409
    assert await admin.store.pending("mo:WH/MO/1", 10) == []


async def test_audit_is_newest_first_and_limited(admin: Admin) -> None:
    letters = [await admin.seed.dead(f"WH/MO/{n}") for n in range(3)]
    for dead in letters:
        await admin.call(
            "POST", f"/v1/deadletters/{dead}/discard", {**ACTION, "reason": f"r{dead}"}
        )

    entries = (await admin.get("/v1/audit"))["entries"]
    assert [e["dead_letter_id"] for e in entries] == letters[::-1]
    assert entries[0]["reason"] == f"r{letters[-1]}"
    assert entries[0]["at"].endswith("Z")
    assert len((await admin.get("/v1/audit", limit=2))["entries"]) == 2
    for limit in (0, 1001, "many"):
        assert (await admin.call("GET", "/v1/audit", params={"limit": limit})).status_code == 422


async def test_orders_show_parking(admin: Admin) -> None:
    await admin.seed.queue("WH/MO/1")
    await admin.seed.queue("WH/MO/2")
    await admin.store.park("mo:WH/MO/1", "MO not found", at(65), at(60))
    await admin.store.save_ledger("mo:WH/MO/2", {}, at(61))

    parked = (await admin.get("/v1/orders", parked="true"))["orders"]
    assert parked == [
        {
            "key": "mo:WH/MO/1",
            "parked": True,
            "reason": "MO not found",
            "parked_since": "2025-03-01T09:00:00Z",
            "attempts": 1,
            "next_attempt_at": "2025-03-01T09:05:00Z",
            "pending": 1,
            "updated_at": parked[0]["updated_at"],
        }
    ]
    every = (await admin.get("/v1/orders"))["orders"]
    assert {o["key"] for o in every} == {"mo:WH/MO/1", "mo:WH/MO/2"}
    assert next(o for o in every if o["key"] == "mo:WH/MO/2")["parked"] is False


async def test_openapi_documents_the_answers(admin: Admin) -> None:
    paths = (await admin.client.get("/openapi.json")).json()["paths"]
    for path, method, expected in [
        ("/v1/deadletters", "get", {"200", "401", "422", "503"}),
        ("/v1/deadletters/{dead_letter_id}", "get", {"200", "401", "404", "422", "503"}),
        ("/v1/deadletters/{dead_letter_id}/replay", "post", {"200", "401", "404", "409", "503"}),
        ("/v1/deadletters/{dead_letter_id}/discard", "post", {"200", "401", "404", "409", "503"}),
        ("/v1/deadletters/replay", "post", {"200", "401", "422", "503"}),
        ("/v1/audit", "get", {"200", "401", "503"}),
        ("/v1/orders", "get", {"200", "401", "503"}),
    ]:
        operation = paths[path][method]
        assert expected <= set(operation["responses"]), path
        assert operation["security"] == [{"HTTPBearer": []}], path
