"""The ``[odoo]`` section: where Odoo is, as whom the relay calls it, and how patiently."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from cloud_relay.errors import ConfigError


class OdooConfig(BaseModel):
    """How to reach Odoo and with which account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str
    """Base URL of the Odoo server (``https://erp.example.com``), without ``/jsonrpc``."""
    database: str
    """Odoo database name."""
    login: str
    """Login of the connector account the API key belongs to."""
    api_key_file: Path | None = None
    """File holding the account's API key (a systemd credential, say); default: unset."""
    api_key: SecretStr | None = None
    """The API key itself (``CLOUD_RELAY__ODOO__API_KEY``); prefer api_key_file. Default: unset."""
    version: Literal["auto", 17, 18, 19] = "auto"
    """Odoo major version, or ``auto`` to ask the server at start (``common.version``)."""
    timeout_seconds: float = Field(default=60.0, gt=0)
    """Longest wait for one answer; above Odoo's own ~20 s of retries on a busy row."""
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    """Longest wait to open a connection."""
    max_connections: int = Field(default=4, ge=1, le=100)
    """Concurrent HTTP connections to Odoo (each ties up an Odoo worker thread)."""
    retry_attempts: int = Field(default=3, ge=1, le=20)
    """Tries of one call on a transient failure that certainly did not apply (1: no retry)."""
    retry_backoff_seconds: float = Field(default=0.5, ge=0)
    """Wait before the first retry; doubled for each later one, with jitter."""
    retry_backoff_max_seconds: float = Field(default=10.0, ge=0)
    """Longest wait between two tries."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_key(self) -> OdooConfig:
        if self.api_key_file is None and self.api_key is None:
            raise ValueError("set api_key_file (or api_key, e.g. from CLOUD_RELAY__ODOO__API_KEY)")
        return self

    def resolve_api_key(self) -> SecretStr:
        """The API key, read from api_key_file when set (trailing newline stripped)."""
        if self.api_key_file is not None:
            try:
                key = self.api_key_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(
                    f"[odoo] api_key_file: cannot read {self.api_key_file}: {exc.strerror}"
                ) from exc
            if not key:
                raise ConfigError(f"[odoo] api_key_file: {self.api_key_file} is empty")
            return SecretStr(key)
        assert self.api_key is not None
        if not self.api_key.get_secret_value().strip():
            raise ConfigError("[odoo] api_key is empty")
        return SecretStr(self.api_key.get_secret_value().strip())
