"""Options of the local health page (``[health]``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, field_validator


class HealthConfig(BaseModel):
    """The technician's page, ``/healthz`` and ``/metrics``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    listen: str = "127.0.0.1:8787"
    """``host:port`` to serve on; empty to serve nothing."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value:
            host, sep, port = value.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
                raise ValueError(f"{value!r} is not host:port")
        return value
