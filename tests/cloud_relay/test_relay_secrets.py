"""Secrets the relay refuses to start without, and what it asks of clients off loopback:
admin token length, the Odoo API key file, tokens for /metrics and /openapi.json, token
guessing, and cookie and content-type headers."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import httpx
import pytest

from cloud_relay.config import MIN_ADMIN_TOKEN_CHARS, ServerConfig
from cloud_relay.http import build_app
from cloud_relay.inbox.store import InboxStore
from tests.cloud_relay.conftest import ADMIN_TOKEN, TEST_SERVER, Relay, StartRelay, serve
from tests.cloud_relay.test_cli import relay_cli, write_config

ODOO = '[odoo]\nurl = "http://127.0.0.1:1"\ndatabase = "d"\nlogin = "connector"\n'
METRICS_TOKEN = "metrics-token-0123456789"
OFF_LOOPBACK = ServerConfig(
    listen="0.0.0.0:8080",
    max_body_bytes=TEST_SERVER.max_body_bytes,
    max_decoded_bytes=TEST_SERVER.max_decoded_bytes,
)


# --- check-config and run refuse what would fail later ----------------------------------------


@pytest.mark.parametrize("command", ["check-config", "run"])
def test_a_short_admin_token_is_refused_naming_the_minimum(tmp_path: Path, command: str) -> None:
    config = write_config(tmp_path, '[admin]\ntoken = "a"\n')
    result = relay_cli(command, config=config)
    assert result.returncode == 2, result.stderr
    assert "[admin] token" in result.stderr
    assert f"at least {MIN_ADMIN_TOKEN_CHARS}" in result.stderr


@pytest.mark.parametrize("command", ["check-config", "run"])
@pytest.mark.parametrize("problem", ["missing", "unreadable"])
def test_an_odoo_api_key_file_that_cannot_be_read_is_refused(
    tmp_path: Path, command: str, problem: str
) -> None:
    key = tmp_path / "odoo-key"
    if problem == "unreadable":
        if os.geteuid() == 0:
            key.mkdir()  # root reads any file: a directory cannot be read as one
        else:
            key.write_text("secret\n")
            key.chmod(0)
    config = write_config(tmp_path, f'{ODOO}api_key_file = "{key}"\n')
    result = relay_cli(command, config=config)
    assert result.returncode == 2, result.stderr
    assert "[odoo] api_key_file" in result.stderr and str(key) in result.stderr


def test_off_loopback_without_any_token_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[server]\nlisten = "0.0.0.0:8080"\n')
    result = relay_cli("check-config", config=config)
    assert result.returncode == 2, result.stderr
    assert "metrics_token_file" in result.stderr and "0.0.0.0:8080" in result.stderr
    token = tmp_path / "admin-token"
    token.write_text(ADMIN_TOKEN + "\n")
    config = write_config(
        tmp_path, f'[server]\nlisten = "0.0.0.0:8080"\n[admin]\ntoken_file = "{token}"\n'
    )
    assert relay_cli("check-config", config=config).returncode == 0


# --- /metrics and /openapi.json off loopback --------------------------------------------------


@pytest.mark.parametrize("path", ["/metrics", "/openapi.json"])
async def test_operations_routes_need_a_token_off_loopback(
    start_relay: StartRelay, path: str
) -> None:
    relay = await start_relay(OFF_LOOPBACK)
    bare = await relay.client.get(relay.url + path)
    assert bare.status_code == 401, bare.text
    assert "gateway" not in bare.text and bare.headers["www-authenticate"] == "Bearer"
    admin = await relay.client.get(
        relay.url + path, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert admin.status_code == 200


async def test_a_metrics_token_opens_metrics_off_loopback(inbox: InboxStore) -> None:
    app = build_app(inbox, OFF_LOOPBACK, admin_token=None, metrics_token=METRICS_TOKEN)
    async with serve(app) as url, httpx.AsyncClient(timeout=30) as client:
        assert (await client.get(url + "/metrics")).status_code == 401
        wrong = await client.get(url + "/metrics", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        good = await client.get(
            url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
        )
        assert good.status_code == 200 and "cloud_relay" in good.text


async def test_operations_routes_stay_open_on_loopback(relay: Relay) -> None:
    assert (await relay.client.get(relay.url + "/metrics")).status_code == 200
    assert (await relay.client.get(relay.url + "/openapi.json")).status_code == 200


# --- token guessing ---------------------------------------------------------------------------


def _client_from(address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=address), timeout=30)


GUESSES = int(os.environ.get("RELAY_TEST_TOKEN_GUESSES", "60"))


async def test_bearer_token_guesses_are_locked_out_per_client(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "cloud_relay.admin.throttle")
    statuses = []
    for n in range(GUESSES):
        answer = await relay.client.get(
            relay.url + "/v1/gateways", headers={"Authorization": f"Bearer guess-{n}"}
        )
        statuses.append(answer.status_code)
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 6, statuses  # the free guesses, then one per lockout
    locked = await relay.client.get(
        relay.url + "/v1/gateways", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert locked.status_code == 429  # even the right token waits: it is not compared
    assert int(locked.headers["retry-after"]) >= 1
    assert any(
        "locked out" in r.getMessage() and "127.0.0.1" in r.getMessage() for r in caplog.records
    )
    # Another address is not locked out.
    async with _client_from("127.0.0.2") as other:
        answer = await other.get(
            relay.url + "/v1/gateways",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert answer.status_code == 200


async def test_requests_without_a_token_are_no_guesses(relay: Relay) -> None:
    for _ in range(20):
        assert (await relay.client.get(relay.url + "/v1/gateways")).status_code == 401
    answer = await relay.client.get(
        relay.url + "/v1/gateways", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert answer.status_code == 200


async def test_login_form_guesses_are_locked_out(relay: Relay) -> None:
    statuses = []
    for n in range(GUESSES):
        answer = await relay.client.post(
            relay.url + "/admin/login",
            data={"token": f"guess-{n}"},
            headers={"Sec-Fetch-Site": "same-origin"},
        )
        statuses.append(answer.status_code)
    assert set(statuses) == {401, 429}
    assert statuses.count(401) <= 6, statuses
    answer = await relay.client.post(
        relay.url + "/admin/login",
        data={"token": ADMIN_TOKEN},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 429 and "retry-after" in answer.headers


# --- headers ----------------------------------------------------------------------------------


async def test_admin_json_says_nosniff(relay: Relay) -> None:
    good = await relay.client.get(
        relay.url + "/v1/gateways", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    bad = await relay.client.get(relay.url + "/v1/gateways")
    for answer in (good, bad):
        assert answer.headers["content-type"].startswith("application/json")
        assert answer.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize(
    "server",
    [
        ServerConfig(behind_tls_proxy=True),
        ServerConfig(public_url="https://relay.example.com"),
    ],
)
async def test_session_cookie_is_secure_behind_a_tls_proxy(
    start_relay: StartRelay, server: ServerConfig
) -> None:
    relay = await start_relay(server)
    answer = await relay.client.post(
        relay.url + "/admin/login",
        data={"token": ADMIN_TOKEN},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 303
    assert "secure" in answer.headers["set-cookie"].lower()


async def test_session_cookie_is_not_secure_over_plain_http(relay: Relay) -> None:
    answer = await relay.client.post(
        relay.url + "/admin/login",
        data={"token": ADMIN_TOKEN},
        headers={"Sec-Fetch-Site": "same-origin"},
    )
    assert answer.status_code == 303
    assert "secure" not in answer.headers["set-cookie"].lower()
