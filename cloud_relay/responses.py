"""Answers every part of the relay's HTTP API shares: the error body and ``Retry-After``.

Ingest and the admin API both import these; neither imports the other, and the app that
mounts both (:mod:`cloud_relay.http`) imports them all.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """Base of the relay's answer bodies: exactly these fields, immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorResponse(Answer):
    """A refusal, with a sentence that says why."""

    error: str


RETRY_AFTER_HEADER: dict[str, Any] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "schema": {"type": "integer"},
    }
}
