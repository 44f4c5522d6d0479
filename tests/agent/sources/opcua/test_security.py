"""A signed and encrypted session with user name and password, to a server that demands it."""

from __future__ import annotations

from pathlib import Path

from tests.agent.sources.opcua.harness import (
    make_config,
    node,
    quantities,
    running_source,
    wait_until,
)
from tests.fixtures.opcua_server import OpcuaTestServer, ServerSecurity, make_certificate

GOOD = node("good", "good", "counter", event="production.reported")


async def test_secure_session_with_password_and_a_refused_one(tmp_path: Path) -> None:
    server_pair = await make_certificate(
        tmp_path, "server", "urn:freeopcua:python:server", server=True
    )
    client_pair = await make_certificate(
        tmp_path, "client", "urn:plant-link:edge-agent", server=False
    )
    server = OpcuaTestServer(security=ServerSecurity(server_pair, {"operator": "s3cret"}))
    await server.start()
    try:
        good_password, bad_password = tmp_path / "password", tmp_path / "wrong"
        good_password.write_text("s3cret\n")
        bad_password.write_text("guess\n")
        secure = {
            "security_policy": "Basic256Sha256",
            "security_mode": "SignAndEncrypt",
            "certificate_file": client_pair.certificate,
            "private_key_file": client_pair.key,
            "server_certificate_file": server_pair.certificate,
            "username": "operator",
        }
        config = make_config(
            server.endpoint,
            [GOOD],
            order={"value": "MO/0200"},
            password_file=good_password,
            **secure,
        )
        async with running_source(server, tmp_path / "ok", config) as run:
            await run.wait_connected()
            await run.wait_settled(1)
            await server.write("good", 4)
            assert quantities(await run.wait_events(1)) == [4]

        refused = config.model_copy(update={"password_file": bad_password})
        async with running_source(server, tmp_path / "refused", refused) as run:
            await wait_until(lambda: run.stats().last_error is not None, "the refusal")
            assert not run.stats().connected
            assert "BadUserAccessDenied" in (run.stats().last_error or "")
            assert "s3cret" not in (run.stats().last_error or "")
            assert "guess" not in (run.stats().last_error or "")
    finally:
        await server.stop()
