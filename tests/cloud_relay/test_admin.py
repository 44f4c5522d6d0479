"""The admin API: bearer-token auth, and what it shows of gateways, keys and stored events."""

from __future__ import annotations

import pytest

from cloud_relay.admin.api import MAX_EVENTS_PER_PAGE
from tests.cloud_relay.conftest import ADMIN_TOKEN, Relay, StartRelay
from tests.cloud_relay.support import batch_body, register, upload

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ROUTES = ["/v1/gateways", "/v1/gateways/line-1", "/v1/gateways/line-1/events"]


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
        {"Authorization": f"Basic {ADMIN_TOKEN}"},
        {"Authorization": ADMIN_TOKEN},
    ],
    ids=["none", "wrong", "longer", "basic", "no-scheme"],
)
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_requests_without_the_token_are_401(
    relay: Relay, path: str, headers: dict[str, str]
) -> None:
    await register(relay.store, "line-1")
    response = await relay.client.get(relay.url + path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"error": "a valid bearer token is required"}


@pytest.mark.parametrize("path", ROUTES)
@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_without_a_configured_token_the_api_is_closed(
    start_relay: StartRelay, path: str
) -> None:
    relay = await start_relay(admin_token=None)
    for headers in ({}, {"Authorization": "Bearer x"}, AUTH):
        response = await relay.client.get(relay.url + path, headers=headers)
        assert response.status_code == 503
        assert response.json() == {"error": "admin token not configured"}


async def test_gateways_show_keys_and_ack_points(relay: Relay) -> None:
    line1 = await register(relay.store, "line-1")
    line2 = await register(relay.store, "line-2")
    await relay.store.revoke_key(line2.key_id)
    await upload(relay.client, relay.url, line1, batch_body("line-1", 1, 3))

    listing = await relay.client.get(relay.url + "/v1/gateways", headers=AUTH)
    assert listing.status_code == 200
    by_id = {g["gateway_id"]: g for g in listing.json()}
    assert set(by_id) == {"line-1", "line-2"}
    assert by_id["line-1"]["acked_seq"] == 3
    assert by_id["line-1"]["last_seen_at"] is not None
    assert [k["key_id"] for k in by_id["line-1"]["keys"]] == [line1.key_id]
    assert by_id["line-1"]["keys"][0]["revoked_at"] is None
    assert by_id["line-1"]["keys"][0]["public_key_pem"] == line1.public_pem
    assert by_id["line-2"]["keys"][0]["revoked_at"] is not None
    assert by_id["line-2"]["acked_seq"] == 0

    one = await relay.client.get(relay.url + "/v1/gateways/line-1", headers=AUTH)
    assert one.status_code == 200
    assert one.json() == by_id["line-1"]


async def test_unknown_gateway_is_404(relay: Relay) -> None:
    for path in ("/v1/gateways/nobody", "/v1/gateways/nobody/events"):
        response = await relay.client.get(relay.url + path, headers=AUTH)
        assert response.status_code == 404
        assert "nobody" in response.json()["error"]


async def test_events_page_through_with_audit_fields(relay: Relay) -> None:
    gateway = await register(relay.store, "line-1")
    body = batch_body("line-1", 1, 5)
    await upload(relay.client, relay.url, gateway, body)
    url = relay.url + "/v1/gateways/line-1/events"

    page = (await relay.client.get(url, params={"limit": 2}, headers=AUTH)).json()
    assert [e["seq"] for e in page["events"]] == [1, 2]
    assert page["next_after_seq"] == 2
    first = page["events"][0]
    assert first["key_id"] == gateway.key_id
    assert first["type"] == "production.reported"
    assert first["event"]["data"] == {"order": "MO/001", "qty": 1.0}
    assert first["event"]["seq"] == 1
    assert first["received_at"]

    rest = (await relay.client.get(url, params={"after_seq": 2}, headers=AUTH)).json()
    assert [e["seq"] for e in rest["events"]] == [3, 4, 5]
    end = (await relay.client.get(url, params={"after_seq": 5}, headers=AUTH)).json()
    assert end["events"] == [] and end["next_after_seq"] == 5


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
async def test_events_limit_is_capped_and_checked(relay: Relay) -> None:
    gateway = await register(relay.store, "line-1")
    count = MAX_EVENTS_PER_PAGE + 5
    response = await upload(relay.client, relay.url, gateway, batch_body("line-1", 1, count))
    assert response.json() == {"acked_seq": count}
    url = relay.url + "/v1/gateways/line-1/events"

    capped = await relay.client.get(url, params={"limit": 5000}, headers=AUTH)
    assert capped.status_code == 200
    assert len(capped.json()["events"]) == MAX_EVENTS_PER_PAGE
    for bad in ({"limit": 0}, {"after_seq": -1}, {"limit": "many"}):
        assert (await relay.client.get(url, params=bad, headers=AUTH)).status_code == 422
