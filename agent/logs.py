"""Logging set-up: JSON lines under systemd, readable text on a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: Record attributes that carry context in stable keys (``log.info(..., extra={"seq": 7})``).
_CONTEXT_KEYS = ("gateway_id", "seq", "order", "topic", "endpoint", "component", "error")


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the stable context keys when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in _CONTEXT_KEYS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(level: str, fmt: str) -> None:
    """Install one handler on the root logger."""
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler.setFormatter(
        JsonFormatter()
        if use_json
        else logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("asyncua", "httpx", "httpcore", "aiosqlite", "uvicorn"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    # asyncua logs every lost connection as a crash with a traceback; the OPC UA source reports
    # the loss itself, once, in words.
    logging.getLogger("asyncua.client.ua_session").setLevel(logging.CRITICAL)
