"""Options of the OPC UA source that can never work are refused before the first connect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agent.errors import ConfigError
from agent.sources.opcua.config import OpcuaConfig
from agent.sources.opcua.connection import check_config

SAMPLE = {"name": "t", "namespace_uri": "urn:l", "identifier": "s=T", "rule": "sample"}


def build(**options: Any) -> OpcuaConfig:
    return OpcuaConfig.model_validate(
        {"endpoint": "opc.tcp://plc:4840", "nodes": [SAMPLE], **options}
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"security_policy": "Basic256Sha256"}, "must both be 'None'"),
        (
            {"security_policy": "Basic256Sha256", "security_mode": "SignAndEncrypt"},
            "needs certificate_file and private_key_file",
        ),
        ({"password_file": "/run/credentials/pw"}, "password_file needs username"),
        (
            {"queue_size": 100, "nodes": [{**SAMPLE, "name": f"t{i}"} for i in range(60)]},
            "at least 122",
        ),
    ],
)
def test_impossible_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build(**options)


def test_a_malformed_identifier_refuses_to_start() -> None:
    with pytest.raises(ConfigError, match="'x=1'"):
        check_config(build(nodes=[{**SAMPLE, "identifier": "x=1"}]))


def test_a_missing_certificate_refuses_to_start(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("not checked here")
    config = build(
        security_policy="Basic256Sha256",
        security_mode="Sign",
        certificate_file=tmp_path / "missing.der",
        private_key_file=key,
    )
    with pytest.raises(ConfigError, match="certificate_file"):
        check_config(config)
