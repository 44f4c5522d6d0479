"""The agent's settings: one TOML file plus ``EDGE_AGENT__SECTION__KEY`` environment overrides.

Every section is a frozen model that forbids unknown keys, so a typo is an error that names the
file, the key and what is wrong.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from agent.errors import ConfigError
from agent.health.config import HealthConfig
from agent.queue.config import QueueConfig
from agent.sources.mqtt.config import MqttConfig
from agent.sources.opcua.config import OpcuaConfig
from agent.uploader.config import RelayConfig
from wire.events import GATEWAY_ID_PATTERN

DEFAULT_CONFIG_PATH = Path("/etc/edge-agent/agent.toml")
ENV_PREFIX = "EDGE_AGENT__"


class GatewayConfig(BaseModel):
    """Who this gateway is and where it keeps its state."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=GATEWAY_ID_PATTERN)
    """Gateway id, unique per plant estate; registered with the relay beside its key."""
    signing_key_file: Path
    """Ed25519 private key (PEM) made by ``edge-agent keygen``."""
    state_dir: Path = Path("/var/lib/edge-agent")
    """Directory for the queue and other state."""


class LogConfig(BaseModel):
    """Logging."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Lowest level written."""
    format: Literal["auto", "json", "text"] = "auto"
    """``json`` lines (under systemd), ``text`` for a terminal; ``auto`` picks by whether
    stderr is a terminal."""


class AgentSettings(BaseSettings):
    """All settings of one edge agent."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", frozen=True
    )

    gateway: GatewayConfig
    relay: RelayConfig = RelayConfig()
    queue: QueueConfig = QueueConfig()
    mqtt: MqttConfig = MqttConfig()
    opcua: OpcuaConfig = OpcuaConfig()
    health: HealthConfig = HealthConfig()
    log: LogConfig = LogConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values arrive as init arguments; the environment overrides them.
        return (env_settings, init_settings)

    @property
    def queue_path(self) -> Path:
        """The queue file: ``[queue] path`` or ``<state_dir>/queue.db``."""
        return self.queue.path or self.gateway.state_dir / "queue.db"


def _location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, raising :class:`ConfigError` that names the file on any failure."""
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: file not found") from exc
    except PermissionError as exc:
        raise ConfigError(f"{path}: cannot read file: permission denied") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def load_settings(path: Path) -> AgentSettings:
    """Load settings from ``path`` and the environment, or raise :class:`ConfigError`."""
    data = read_toml(path)
    try:
        return AgentSettings(**data)
    except ValidationError as exc:
        problems = []
        from_env = False
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            where = _location(loc) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            variable = _environment_variable(loc)
            if variable is not None:
                from_env = True
                problems.append(f"environment variable {variable}: {where}: {msg}")
            else:
                problems.append(f"{path}: {where}: {msg}")
        hint = f" (values may also come from {ENV_PREFIX}* environment variables)"
        if from_env:
            hint = ""
        raise ConfigError("\n".join(problems) + hint) from exc


def _environment_variable(loc: tuple[int | str, ...]) -> str | None:
    """The ``EDGE_AGENT__…`` variable that set the value at ``loc``, if one did.

    The environment wins over the file, so a variable that names the whole path (or one of its
    sections, holding JSON) is where the value came from.
    """
    names: list[str] = []
    for part in loc:
        if isinstance(part, int):
            break
        names.append(part)
    upper = {name.upper(): name for name in os.environ if name.upper().startswith(ENV_PREFIX)}
    for end in range(len(names), 0, -1):
        candidate = ENV_PREFIX + "__".join(names[:end]).upper()
        if candidate in upper:
            return upper[candidate]
    return None


def check_state_dir(path: Path, *, create: bool) -> None:
    """Make sure ``[gateway] state_dir`` is a directory this process can write, or raise.

    With ``create`` a missing directory is made (with its parents); without, only whether it
    could be is checked, so ``check-config`` changes nothing on disk.
    """
    where = f"gateway.state_dir: {path}"
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{where}: exists but is not a directory")
    if not path.exists():
        parent = next((p for p in path.parents if p.exists()), None)
        if parent is None or not parent.is_dir():
            raise ConfigError(f"{where}: does not exist and cannot be made ({parent} is a file)")
        if not create:
            if not os.access(parent, os.W_OK | os.X_OK):
                raise ConfigError(
                    f"{where}: does not exist, and {parent} is not writable to create it"
                )
            return
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"{where}: cannot create it: {exc.strerror or exc}") from exc
    try:
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise ConfigError(f"{where}: cannot write in it: {exc.strerror or exc}") from exc
