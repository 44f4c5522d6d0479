"""The relay's settings: one TOML file plus ``CLOUD_RELAY__SECTION__KEY`` environment overrides."""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from cloud_relay.errors import ConfigError
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.odoo.config import OdooConfig
from cloud_relay.reconcile.config import ReconcileConfig
from cloud_relay.retention.config import RetentionConfig

DEFAULT_CONFIG_PATH = Path("/etc/cloud-relay/relay.toml")
ENV_PREFIX = "CLOUD_RELAY__"
#: Shortest admin token accepted: guessing must be hopeless even at the throttle's pace.
MIN_ADMIN_TOKEN_CHARS = 16


def _read_secret(path: Path, key: str) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError as exc:
        raise ConfigError(f"{key}: cannot read {path}: {exc}") from exc


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
    max_inflight_body_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    """Most body bytes all uploads being read at once may hold (each counts its
    Content-Length, or max_body_bytes without one); past it 503 with Retry-After."""
    max_skew_seconds: int = Field(default=300, ge=1)
    """How far a signature's ``created`` may be from the relay's clock."""
    retry_after_seconds: int = Field(default=5, ge=1)
    """``Retry-After`` sent with a 503 when the store cannot write."""
    header_timeout_seconds: float = Field(default=10.0, gt=0)
    """A request head (request line and headers) must arrive within this after the connection
    opens or the request's first byte; otherwise 408 and the connection is closed."""
    body_timeout_seconds: float = Field(default=120.0, gt=0)
    """A request body must arrive within this after its head; otherwise the connection is
    closed (a gateway on a slow link sends smaller batches)."""
    keep_alive_seconds: int = Field(default=5, ge=1)
    """An idle keep-alive connection is closed after this."""
    max_connections: int = Field(default=1000, ge=1)
    """Connections (and requests) served at once; a request past it gets 503."""
    behind_tls_proxy: bool = False
    """Browsers reach the relay over HTTPS through a proxy that ends TLS: the admin page's
    cookies are then always ``Secure`` (a ``public_url`` of ``https://`` implies it)."""
    metrics_token: SecretStr | None = None
    """Bearer token for ``/metrics`` and ``/openapi.json`` when the relay listens beyond
    loopback or behind a proxy (the admin token is accepted too); prefer metrics_token_file."""
    metrics_token_file: Path | None = None
    """File holding the metrics token."""

    @property
    def on_loopback(self) -> bool:
        """Whether only this machine reaches the listener (and no proxy forwards to it)."""
        host = self.listen.rpartition(":")[0].strip("[]")
        if self.public_url is not None:
            return False
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    @property
    def cookies_secure(self) -> bool:
        """Whether the admin page's cookies are ``Secure`` whatever the request says."""
        return self.behind_tls_proxy or (self.public_url or "").startswith("https://")

    def resolve_metrics_token(self) -> str | None:
        """The metrics token, read from metrics_token_file when set."""
        if self.metrics_token_file is not None:
            return _read_secret(self.metrics_token_file, "[server] metrics_token_file")
        if self.metrics_token is None:
            return None
        return self.metrics_token.get_secret_value().strip() or None

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
        """The token, read from token_file when set; ConfigError when shorter than
        :data:`MIN_ADMIN_TOKEN_CHARS`."""
        if self.token_file is not None:
            token = _read_secret(self.token_file, "[admin] token_file")
            key = "[admin] token_file"
        else:
            token = self.token.get_secret_value() if self.token else None
            key = "[admin] token"
        if token is not None and len(token) < MIN_ADMIN_TOKEN_CHARS:
            raise ConfigError(
                f"{key}: the admin token has {len(token)} characters; at least"
                f" {MIN_ADMIN_TOKEN_CHARS} are required (e.g. `openssl rand -hex 16`)"
            )
        return token


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
    stall_seconds: float = Field(default=120.0, gt=0)
    """The systemd watchdog is no longer fed (systemd restarts the relay) once the writer has
    neither made progress nor reported itself well for this long (a crash loop, a hang)."""
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

    bom: BomConfig = BomConfig()
    """BOM publishing (``cloud-relay bom ...``, ``POST /v1/boms``)."""

    def check_secrets(self) -> None:
        """Read every configured secret now, so that ``run`` and ``check-config`` refuse (exit
        2, naming the key) what would fail later: an unreadable or short admin token, an
        unreadable Odoo API key, ``/metrics`` served beyond loopback with no token to ask for."""
        admin = self.admin.resolve_token()
        metrics = self.server.resolve_metrics_token()
        if self.odoo is not None and self.writer.enabled:
            self.odoo.resolve_api_key()
        if not self.server.on_loopback and admin is None and metrics is None:
            raise ConfigError(
                f"[server] listen = {self.server.listen!r} is not a loopback address (or"
                " public_url is set): set [server] metrics_token_file or an [admin] token_file,"
                " so /metrics and /openapi.json ask for a token"
            )

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
