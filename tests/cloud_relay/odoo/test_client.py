"""The Odoo client against the sandbox, for the behaviours checked against a real Odoo 18.0:
connect, reads, writes, each kind of error, retries, and that the key never shows."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from cloud_relay.config import load_settings
from cloud_relay.errors import ConfigError, RejectedError, TransientError
from cloud_relay.odoo.client import OdooClient
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.odoo.errors import (
    OdooAccessDenied,
    OdooAccessError,
    OdooConcurrencyError,
    OdooConfigError,
    OdooMissingError,
    OdooRecordNotFound,
    OdooUnavailableError,
    OdooUserError,
    OdooValidationError,
)
from cloud_relay.odoo.sandbox import SandboxHandle, running_sandbox
from cloud_relay.odoo.sandbox.faults import FaultRule


def config_for(handle: SandboxHandle, **overrides: Any) -> OdooConfig:
    values: dict[str, Any] = {
        "url": handle.base_url,
        "database": handle.database,
        "login": handle.login,
        "api_key": SecretStr(handle.api_key),
        "retry_backoff_seconds": 0.0,
    }
    values.update(overrides)
    return OdooConfig(**values)


def admin_config(handle: SandboxHandle, **overrides: Any) -> OdooConfig:
    info = handle.info
    return config_for(
        handle, login=info.admin_login, api_key=SecretStr(info.admin_api_key), **overrides
    )


@pytest.fixture
async def odoo18() -> AsyncIterator[SandboxHandle]:
    async with running_sandbox(18) as handle:
        yield handle


@pytest.fixture
async def admin(odoo18: SandboxHandle) -> AsyncIterator[OdooClient]:
    async with await OdooClient.connect(admin_config(odoo18)) as client:
        yield client


@pytest.fixture
async def connector(odoo18: SandboxHandle) -> AsyncIterator[OdooClient]:
    """The least-privilege account: Internal User, Inventory/User, Manufacturing/User."""
    async with await OdooClient.connect(config_for(odoo18)) as client:
        yield client


async def make_mo(admin: OdooClient, qty: float = 5) -> tuple[int, int, int]:
    """A finished product with a one-line BOM and a draft MO: (product, component, mo)."""
    fg = await admin.create(
        "product.product",
        {"name": "Gearbox", "default_code": "GB", "type": "consu", "is_storable": True},
    )
    comp = await admin.create(
        "product.product",
        {"name": "Bolt", "default_code": "B", "type": "consu", "is_storable": True},
    )
    [row] = await admin.read("product.product", [fg], ["product_tmpl_id"])
    bom = await admin.create(
        "mrp.bom",
        {
            "product_tmpl_id": row["product_tmpl_id"][0],
            "product_qty": 1,
            "type": "normal",
            "consumption": "flexible",
            "bom_line_ids": [[0, 0, {"product_id": comp, "product_qty": 2}]],
        },
    )
    mo = await admin.create("mrp.production", {"product_id": fg, "product_qty": qty, "bom_id": bom})
    return fg, comp, mo


# -- connecting -------------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "protocol"), [(17, "jsonrpc"), (18, "jsonrpc"), (19, "json2")])
async def test_connect_finds_version_protocol_and_uid(version: int, protocol: str) -> None:
    async with running_sandbox(version) as handle:
        client = await OdooClient.connect(config_for(handle))
        async with client:
            assert client.version == version
            assert client.server_version == f"{version}.0"
            assert client.protocol == protocol
            assert client.uid == handle.info.uid
            found = await client.search_read("res.users", [["id", "=", client.uid]], ["login"])
            assert found == [{"id": handle.info.uid, "login": handle.login}]


async def test_a_configured_version_skips_the_question(odoo18: SandboxHandle) -> None:
    odoo18.faults.reset_calls()
    async with await OdooClient.connect(config_for(odoo18, version=18)) as client:
        assert client.version == 18
    assert "common.version" not in odoo18.faults.calls()


async def test_forcing_json2_on_odoo_18_is_a_config_error(odoo18: SandboxHandle) -> None:
    with pytest.raises(OdooConfigError, match="JSON-2 needs Odoo 19"):
        await OdooClient.connect(config_for(odoo18, version=19))


async def test_api_key_file_with_trailing_newline(odoo18: SandboxHandle, tmp_path: Path) -> None:
    key_file = tmp_path / "odoo-api-key"
    key_file.write_text(odoo18.api_key + "\n")
    config = config_for(odoo18, api_key=None, api_key_file=key_file)
    async with await OdooClient.connect(config) as client:
        assert client.uid == odoo18.info.uid


@pytest.mark.parametrize("where", ["connect", "call"])
async def test_a_wrong_key_is_access_denied_and_never_shown(
    odoo18: SandboxHandle, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "f00d" * 10
    if where == "connect":
        with pytest.raises(OdooAccessDenied) as caught:
            await OdooClient.connect(config_for(odoo18, api_key=SecretStr(wrong)))
    else:
        async with (
            await OdooClient.connect(config_for(odoo18)) as client,
            await OdooClient.connect(admin_config(odoo18)) as admin,
        ):
            # The account is archived while the relay runs (checked on a real Odoo 18.0).
            assert await admin.write("res.users", [client.uid], {"active": False}) is True
            with pytest.raises(OdooAccessDenied) as caught:
                await client.search("mrp.production", [])
            assert client.stats().config_errors_total == 1
    error = caught.value
    assert isinstance(error, ConfigError)
    assert not isinstance(error, RejectedError | TransientError)
    for text in (str(error), repr(error), caplog.text):
        assert wrong not in text
        assert odoo18.api_key not in text


async def test_an_unknown_database_is_a_config_error(odoo18: SandboxHandle) -> None:
    with pytest.raises(OdooConfigError, match='database "nosuchdb" does not exist'):
        await OdooClient.connect(config_for(odoo18, database="nosuchdb"))


async def test_an_unreachable_server_is_transient() -> None:
    async with running_sandbox(18) as handle:
        config = config_for(handle, retry_attempts=2)
        await handle.server.close()
        with pytest.raises(OdooUnavailableError) as caught:
            await OdooClient.connect(config)
    assert caught.value.may_have_applied is False


# -- reading and writing ------------------------------------------------------------------------


async def test_create_confirm_and_produce_an_mo(admin: OdooClient) -> None:
    fg, _, mo = await make_mo(admin)
    [row] = await admin.read("mrp.production", [mo], ["name", "state", "product_id", "product_qty"])
    assert row["state"] == "draft"
    assert row["name"].startswith("WH/MO/")
    assert row["product_id"][0] == fg and row["product_qty"] == 5.0
    assert await admin.execute("mrp.production", "action_confirm", [mo]) is True
    assert await admin.write("mrp.production", [mo], {"qty_producing": 2}) is True
    # Odoo 18 leaves `result` out for set_qty_producing: the client gives None.
    assert await admin.execute("mrp.production", "set_qty_producing", [mo]) is None
    moves = await admin.search_read(
        "stock.move", [["raw_material_production_id", "=", mo]], ["quantity", "picked"]
    )
    assert [(m["quantity"], m["picked"]) for m in moves] == [(4.0, True)]
    found = await admin.find_one("mrp.production", [["name", "=", row["name"]]], ["state"])
    assert found == {"id": mo, "state": "progress"}
    assert await admin.search("mrp.production", [["id", "=", mo]]) == [mo]


async def test_the_connector_account_runs_production(
    admin: OdooClient, connector: OdooClient
) -> None:
    fg, _, _ = await make_mo(admin)
    mo = await connector.create("mrp.production", {"product_id": fg, "product_qty": 1})
    assert await connector.execute("mrp.production", "action_confirm", [mo]) is True


# -- errors, as the real Odoo 18.0 answered them --------------------------------------------------


async def test_user_error(admin: OdooClient) -> None:
    _, comp, mo = await make_mo(admin)
    scrap = await admin.create(
        "stock.scrap", {"product_id": comp, "scrap_qty": 0, "production_id": mo}
    )
    with pytest.raises(OdooUserError) as caught:
        await admin.execute("stock.scrap", "action_validate", [scrap])
    assert str(caught.value) == (
        "stock.scrap.action_validate: odoo.exceptions.UserError: "
        "You can only enter positive quantities."
    )
    assert admin.stats().rejected_errors_total == 1


async def test_validation_errors(admin: OdooClient) -> None:
    fg, comp, _ = await make_mo(admin)
    with pytest.raises(OdooValidationError) as caught:
        await admin.create("mrp.production", {"product_qty": 1})
    assert caught.value.odoo_message.endswith(
        "Model: Manufacturing Order (mrp.production)\nField: Product (product_id)\n"
    )
    with pytest.raises(OdooValidationError, match="The quantity to produce must be positive!"):
        await admin.create("mrp.production", {"product_id": fg, "product_qty": 0})
    await admin.create("stock.lot", {"name": "L1", "product_id": comp})
    with pytest.raises(OdooValidationError, match="must be unique within a company"):
        await admin.create("stock.lot", {"name": "L1", "product_id": comp})


async def test_missing_records(admin: OdooClient) -> None:
    gone = await admin.create("product.product", {"name": "Gone", "type": "consu"})
    assert await admin.execute("product.product", "unlink", [gone]) is True
    # Odoo answers a shorter list, not an error; the client names what is missing.
    assert await admin.execute("product.product", "read", [gone], fields=["name"]) == []
    with pytest.raises(OdooRecordNotFound, match=f"no product.product with id {gone}"):
        await admin.read("product.product", [gone], ["name"])
    with pytest.raises(OdooMissingError) as caught:
        await admin.write("product.product", [gone], {"name": "x"})
    assert (caught.value.model, caught.value.ids) == ("product.product", (gone,))
    with pytest.raises(OdooMissingError, match=r"mrp.production\(987654321,\), User: 2"):
        await admin.execute("mrp.production", "action_confirm", [987654321])
    with pytest.raises(OdooMissingError, match=r"product.product\(987654321,\)"):
        await admin.create("mrp.production", {"product_id": 987654321, "product_qty": 1})
    with pytest.raises(OdooRecordNotFound, match=r"no mrp\.production matches"):
        await admin.find_one("mrp.production", [["name", "=", "WH/MO/NOPE"]], ["name"])


async def test_access_errors_name_the_missing_right(
    admin: OdooClient, connector: OdooClient
) -> None:
    fg, _, _ = await make_mo(admin)
    with pytest.raises(OdooAccessError) as caught:
        await connector.create("product.product", {"name": "nope", "type": "consu"})
    error = caught.value
    assert (error.right, error.model) == ("create", "product.product")
    assert error.allowed_groups == (
        "Extra Rights/Product Creation",
        "Inventory/Administrator",
        "Manufacturing/Administrator",
    )
    with pytest.raises(OdooAccessError) as caught:
        await connector.write("product.product", [fg], {"name": "x"})
    assert caught.value.right == "write"
    with pytest.raises(OdooAccessError) as caught:
        await connector.create("mrp.bom", {"product_tmpl_id": 1})
    assert caught.value.allowed_groups == ("Manufacturing/Administrator",)


# -- retries ------------------------------------------------------------------------------------


async def test_serialization_failure_is_retried(odoo18: SandboxHandle, admin: OdooClient) -> None:
    _, _, mo = await make_mo(admin)
    odoo18.faults.add(
        FaultRule(kind="serialization_failure", model="mrp.production", method="write", times=1)
    )
    assert await admin.write("mrp.production", [mo], {"origin": "line 7"}) is True
    stats = admin.stats()
    assert (stats.retries_total, stats.transient_errors_total) == (1, 1)
    assert "SerializationFailure" in (stats.last_error or "")
    [row] = await admin.read("mrp.production", [mo], ["origin"])
    assert row["origin"] == "line 7"


async def test_retries_stop_after_the_configured_attempts(odoo18: SandboxHandle) -> None:
    async with await OdooClient.connect(admin_config(odoo18, retry_attempts=3)) as client:
        odoo18.faults.reset_calls()
        odoo18.faults.add(FaultRule(kind="serialization_failure", method="search"))
        with pytest.raises(OdooConcurrencyError) as caught:
            await client.search("mrp.production", [])
        assert caught.value.may_have_applied is False
        assert odoo18.faults.calls()["mrp.production.search"] == 3
        assert client.stats().retries_total == 2


async def test_a_503_is_retried_even_for_a_write(odoo18: SandboxHandle, admin: OdooClient) -> None:
    _, _, mo = await make_mo(admin)
    odoo18.faults.add(FaultRule(kind="http_status", status=503, method="action_confirm", times=2))
    assert await admin.execute("mrp.production", "action_confirm", [mo]) is True
    assert admin.stats().retries_total == 2


async def test_a_502_is_retried_only_for_reads(odoo18: SandboxHandle, admin: OdooClient) -> None:
    _, _, mo = await make_mo(admin)
    odoo18.faults.add(FaultRule(kind="http_status", status=502, method="action_confirm", times=1))
    with pytest.raises(OdooUnavailableError) as caught:
        await admin.execute("mrp.production", "action_confirm", [mo])
    assert caught.value.may_have_applied is True
    assert admin.stats().retries_total == 0
    odoo18.faults.add(FaultRule(kind="http_status", status=502, method="search_read", times=1))
    assert await admin.search_read("mrp.production", [["id", "=", mo]], ["state"]) == [
        {"id": mo, "state": "draft"}
    ]
    assert admin.stats().retries_total == 1


async def test_a_timeout_after_sending_is_not_retried_for_a_write(odoo18: SandboxHandle) -> None:
    config = admin_config(odoo18, timeout_seconds=0.2)
    async with await OdooClient.connect(config) as client:
        _, _, mo = await make_mo(client)
        odoo18.faults.add(
            FaultRule(kind="delay", delay_seconds=1.0, method="action_confirm", times=1)
        )
        with pytest.raises(OdooUnavailableError) as caught:
            await client.execute("mrp.production", "action_confirm", [mo])
        assert caught.value.may_have_applied is True
        odoo18.faults.add(FaultRule(kind="delay", delay_seconds=1.0, method="read", times=1))
        rows = await client.read("mrp.production", [mo], ["id"])
        assert rows == [{"id": mo}]
        assert client.stats().retries_total == 1


# -- settings -----------------------------------------------------------------------------------


def test_config_needs_a_key_and_an_http_url() -> None:
    with pytest.raises(PydanticValidationError, match="set api_key_file"):
        OdooConfig(url="http://odoo", database="plant", login="connector")
    with pytest.raises(PydanticValidationError, match="http:// or https://"):
        OdooConfig(url="odoo:8069", database="plant", login="c", api_key=SecretStr("k"))
    config = OdooConfig(
        url="http://odoo:8069/", database="plant", login="c", api_key=SecretStr("k")
    )
    assert config.url == "http://odoo:8069"
    assert "k" not in repr(config.api_key)


def test_unreadable_or_empty_key_file(tmp_path: Path) -> None:
    missing = OdooConfig(url="http://o", database="d", login="c", api_key_file=tmp_path / "none")
    with pytest.raises(ConfigError, match=r"\[odoo\] api_key_file: cannot read"):
        missing.resolve_api_key()
    (tmp_path / "empty").write_text("\n")
    empty = OdooConfig(url="http://o", database="d", login="c", api_key_file=tmp_path / "empty")
    with pytest.raises(ConfigError, match="is empty"):
        empty.resolve_api_key()


def test_relay_settings_take_the_key_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "relay.toml"
    path.write_text('[odoo]\nurl = "https://erp.example.com"\ndatabase = "plant"\nlogin = "c"\n')
    monkeypatch.setenv("CLOUD_RELAY__ODOO__API_KEY", "0123abcd")
    odoo = load_settings(path).odoo
    assert odoo is not None
    assert odoo.resolve_api_key().get_secret_value() == "0123abcd"
    assert odoo.version == "auto"
    monkeypatch.delenv("CLOUD_RELAY__ODOO__API_KEY")
    with pytest.raises(ConfigError, match="odoo: Value error, set api_key_file"):
        load_settings(path)
