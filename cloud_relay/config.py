"""The relay's settings: one TOML file plus ``CLOUD_RELAY__SECTION__KEY`` environment overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cloud_relay.errors import ConfigError
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.reconcile.config import ReconcileConfig
from cloud_relay.retention.config import RetentionConfig

DEFAULT_CONFIG_PATH = Path("/etc/cloud-relay/relay.toml")
ENV_PREFIX = "CLOUD_RELAY__"


class ServerConfig(BaseModel):
    """The HTTP listener and what it accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:8080"
    """``host:port`` to serve on."""
    public_url: str | None = None
    """The base URL gateways use (``https://relay.example.com``) when the relay sits behind a
    proxy: signatures cover the URL the gateway signed. Unset: the URL as received."""
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    """Largest request body accepted as sent (413 past it)."""
    max_decoded_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Largest body after decompression (413 past it: refuses decompression bombs)."""
    max_skew_seconds: int = Field(default=300, ge=1)
    """How far a signature's ``created`` may be from the relay's clock."""
    retry_after_seconds: int = Field(default=5, ge=1)
    """``Retry-After`` sent with a 503 when the store cannot write."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"{value!r} is not host:port")
        return value


class StoreConfig(BaseModel):
    """The durable inbox."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = "sqlite:///var/lib/cloud-relay/inbox.db"
    """``sqlite:///absolute/path.db`` (embedded, one replica) or ``postgresql://user@host/db``
    (several replicas)."""
    pool_size: int = Field(default=10, ge=1, le=200)
    """PostgreSQL connections per replica."""
    durability: Literal["power", "process"] = "power"
    """SQLite only: fsync every commit (``power``) or survive a crash only (``process``)."""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value


class AdminConfig(BaseModel):
    """The admin API and page."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    token: SecretStr | None = None
    """Bearer token for the admin API; prefer token_file."""
    token_file: Path | None = None
    """File holding the admin token (a systemd credential, say)."""

    def resolve_token(self) -> str | None:
        """The token, read from token_file when set."""
        if self.token_file is not None:
            try:
                return self.token_file.read_text().strip() or None
            except OSError as exc:
                raise ConfigError(
                    f"[admin] token_file: cannot read {self.token_file}: {exc}"
                ) from exc
        return self.token.get_secret_value() if self.token else None


class LogConfig(BaseModel):
    """Logging."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    format: Literal["auto", "json", "text"] = "auto"
    """``json`` lines, ``text``, or ``auto`` by whether stderr is a terminal."""


class WriterConfig(BaseModel):
    """The Odoo writer: how many orders at once, how much to fold, how long to wait on Odoo."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    """Post stored events into Odoo (needs ``[odoo]``); false: keep them in the inbox only."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """Manufacturing orders posted in parallel (keep it near ``[odoo] max_connections``)."""
    max_fold: int = Field(default=500, ge=1, le=10000)
    """Most events of one order folded into one round of Odoo calls."""
    patience_seconds: float = Field(default=21600.0, ge=0)
    """How long an order Odoo refuses is retried before its event goes to the dead letters
    (an order created in Odoo later than its first events is the usual case); default 6 h."""
    retry_initial_seconds: float = Field(default=5.0, gt=0)
    """First wait before retrying a refused order; doubled each time."""
    retry_max_seconds: float = Field(default=600.0, gt=0)
    """Longest wait between two retries of a refused order."""
    linger_seconds: float = Field(default=1.0, ge=0)
    """An order being posted waits this long after a round of Odoo calls before the next, so
    events arriving meanwhile fold into one round (a backlog is not held back). 0: no wait."""
    poll_seconds: float = Field(default=1.0, gt=0)
    """How often the inbox is checked for events stored by other replicas."""
    consume_bom_when_unreported: bool = True
    """At ``order.completed``, when no ``material.consumed`` was reported for the order, let
    Odoo consume the components by the bill of materials (otherwise none are consumed)."""


class RelaySettings(BaseSettings):
    """All settings of one relay replica."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    admin: AdminConfig = AdminConfig()
    log: LogConfig = LogConfig()
    odoo: OdooConfig | None = None
    """Where Odoo is and as whom to call it; unset: nothing is posted to Odoo."""
    writer: WriterConfig = WriterConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    retention: RetentionConfig = RetentionConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_settings(path: Path) -> RelaySettings:
    """Load settings from ``path`` and the environment, or raise :class:`ConfigError`."""
    data: dict[str, Any]
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot read file: permission denied") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    try:
        return RelaySettings(**data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{path}: {_location(tuple(err['loc'])) or '(top level)'}: {msg}")
        hint = f" (values may also come from {ENV_PREFIX}* environment variables)"
        raise ConfigError("\n".join(problems) + hint) from exc
