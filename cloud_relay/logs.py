"""Logging set-up: JSON lines under systemd, readable text on a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

#: Record attributes that carry context in stable keys (``log.info(..., extra={"key_id": k})``).
CONTEXT_KEYS = ("gateway_id", "key_id", "seq", "first_seq", "last_seq", "reason", "status", "error")


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the stable context keys when present."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            if key in record.__dict__:
                out[key] = record.__dict__[key]
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message key=value ...`` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={record.__dict__[key]}" for key in CONTEXT_KEYS if key in record.__dict__
        )
        return f"{line} [{context}]" if context else line


def configure(level: str, fmt: str) -> None:
    """Install one handler on the root logger; ``fmt`` is ``json``, ``text`` or ``auto``."""
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler.setFormatter(JsonFormatter() if use_json else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    quiet = max(logging.WARNING, logging.getLevelNamesMapping()[level])
    for noisy in ("asyncpg", "aiosqlite", "uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(quiet)
