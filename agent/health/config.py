"""Options of the local health page (``[health]``)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from pydantic import BaseModel, ConfigDict, SecretStr, field_validator, model_validator

from agent.errors import ConfigError


class HealthConfig(BaseModel):
    """The technician's page, ``/healthz`` and ``/metrics``.

    On loopback they are open to whoever is on the gateway itself; bound to any other address
    the page and ``/metrics`` need a token or basic auth, so a plant network cannot read them
    unasked. ``/healthz`` stays open everywhere: it answers only green/amber/red and why.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:8787"
    """``host:port`` to serve on; empty to serve nothing."""
    token: SecretStr | None = None
    """Token for the page and ``/metrics``; prefer token_file."""
    token_file: Path | None = None
    """File holding the token (a systemd credential, say)."""
    username: str | None = None
    """User name for basic auth on the page and ``/metrics``; needs password_file."""
    password_file: Path | None = None
    """File holding the basic-auth password."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(f"{value!r} is not host:port")
        return value

    @model_validator(mode="after")
    def _guarded_off_loopback(self) -> HealthConfig:
        if self.token is not None and not self.token.get_secret_value().strip():
            raise ValueError("[health] token is empty")
        if (self.username is None) != (self.password_file is None):
            raise ValueError("[health] username and password_file must be set together")
        if self.listen and not self.on_loopback and not self.has_credentials:
            raise ValueError(
                f"[health] listen = {self.listen!r} is not a loopback address: set [health] "
                "token_file (or token, or username and password_file) so the page and /metrics "
                "are not open to the network"
            )
        return self

    @property
    def on_loopback(self) -> bool:
        """Whether ``listen`` is reachable from this machine only."""
        host = self.listen.rpartition(":")[0].strip("[]")
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False  # a host name may resolve to anything

    @property
    def has_credentials(self) -> bool:
        """Whether a token or basic auth is configured."""
        return self.token is not None or self.token_file is not None or self.username is not None

    def resolve_token(self) -> str | None:
        """The token, read from token_file when set."""
        if self.token_file is not None:
            return _read_secret(self.token_file, "token_file")
        return self.token.get_secret_value() if self.token else None

    def resolve_password(self) -> str | None:
        """The basic-auth password, read from password_file."""
        if self.password_file is None:
            return None
        return _read_secret(self.password_file, "password_file")


def _read_secret(path: Path, key: str) -> str:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"[health] {key}: cannot read {path}: {exc}") from exc
    if not text:
        raise ConfigError(f"[health] {key}: {path} is empty")
    return text
