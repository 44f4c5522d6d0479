"""The shapes of the relay's HTTP answers, and the batch request body, as OpenAPI shows them."""

from __future__ import annotations

from typing import Any, Literal

from cloud_relay.responses import RETRY_AFTER_HEADER as RETRY_AFTER_HEADER
from cloud_relay.responses import Answer as _Answer
from cloud_relay.responses import ErrorResponse as ErrorResponse
from wire.bounds import MAX_NESTING_DEPTH, MAX_NUMBER_CHARS
from wire.events import DATA_MODELS, GATEWAY_ID_PATTERN, MAX_SEQ


class AckResponse(_Answer):
    """200: the batch is stored (or already was); everything up to ``acked_seq`` is durable."""

    acked_seq: int


class GapResponse(_Answer):
    """409: the batch starts past the gateway's next expected seq; resend from ``expected_seq``."""

    error: str
    expected_seq: int


class DuplicateEventResponse(_Answer):
    """409: an event id of the batch is already stored under another gateway or seq; the batch
    can never be stored as it is (resending it is refused the same way)."""

    error: str
    event_id: str | None


class InvalidResponse(_Answer):
    """422: the body is not a valid v1 batch; ``location`` points at the field (JSON Pointer)."""

    error: str
    location: str


class WriterHealth(_Answer):
    """The Odoo writer of this replica, as ``/healthz`` reports it."""

    state: str
    healthy: bool
    """Made progress or reported itself well within ``[writer] stall_seconds``."""
    restarts: int
    last_crash: str | None


class HealthResponse(_Answer):
    """``/healthz``: whether this replica can reach its inbox, and how its Odoo writer is."""

    status: Literal["ok", "unavailable"]
    version: str
    writer: WriterHealth | None = None
    """Absent when this replica runs no Odoo writer."""


def _error(model: Any, description: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "description": description, **extra}


BATCH_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _error(AckResponse, "Stored, or already stored: resending is always safe."),
    401: _error(ErrorResponse, "Missing, malformed, bad or stale signature or content digest."),
    403: _error(
        ErrorResponse, "Unknown or revoked key, or a batch for another gateway than the key's."
    ),
    409: _error(
        GapResponse | DuplicateEventResponse,
        "The batch starts past the next expected seq (`expected_seq`), or an event id of it is"
        " already stored under another gateway or seq (`event_id`): never storable as it is.",
    ),
    413: _error(ErrorResponse, "Body too large, as sent or once decompressed."),
    415: _error(ErrorResponse, "Content-Encoding other than zstd, gzip or identity."),
    422: _error(InvalidResponse, "Not a valid v1 batch, or not valid data of its encoding."),
    503: _error(
        ErrorResponse, "The inbox cannot write right now; retry later.", headers=RETRY_AFTER_HEADER
    ),
}


#: A canonical lower-case UUIDv7.
UUID7_PATTERN = "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"


def _event_schema() -> dict[str, Any]:
    """One event: the envelope, with ``data`` shaped by ``type`` (one variant per type)."""
    variants = []
    for event_type, model in sorted(DATA_MODELS.items()):
        data = model.model_json_schema()
        data.pop("title", None)
        variants.append(
            {
                "type": "object",
                "required": ["id", "gateway_id", "seq", "type", "occurred_at", "source", "data"],
                "additionalProperties": False,
                "properties": {
                    "id": {"type": "string", "pattern": UUID7_PATTERN},
                    "gateway_id": {"type": "string", "pattern": GATEWAY_ID_PATTERN},
                    "seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
                    "type": {"type": "string", "const": event_type},
                    "occurred_at": {"type": "string", "format": "date-time"},
                    "source": {"type": "string", "minLength": 1, "maxLength": 512},
                    "data": data,
                },
            }
        )
    return {"oneOf": variants}


def _header(name: str, description: str, required: bool, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": required,
        "description": description,
        "schema": {"type": "string", **schema},
    }


BATCH_OPENAPI: dict[str, Any] = {
    "parameters": [
        _header("Signature-Input", "RFC 9421 signature parameters (label sig1).", True),
        _header("Signature", "RFC 9421 Ed25519 signature.", True),
        _header("Content-Digest", "RFC 9530 sha-256 digest of the body as sent.", True),
        _header(
            "Content-Encoding",
            "Compression of the body; the digest covers the compressed bytes.",
            False,
            enum=["zstd", "gzip", "identity"],
        ),
    ],
    "requestBody": {
        "required": True,
        "description": "A batch of one gateway's contiguous events, read as raw bytes: the "
        "signature covers them exactly as sent. Each event id appears once; the JSON nests at "
        f"most {MAX_NESTING_DEPTH} deep and no number literal is longer than {MAX_NUMBER_CHARS} "
        "characters (422 naming the member otherwise).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["schema_version", "gateway_id", "first_seq", "last_seq", "events"],
                    "additionalProperties": False,
                    "properties": {
                        "schema_version": {"type": "integer", "enum": [1]},
                        "gateway_id": {"type": "string", "pattern": GATEWAY_ID_PATTERN},
                        "first_seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
                        "last_seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ},
                        "events": {"type": "array", "minItems": 1, "items": _event_schema()},
                    },
                }
            }
        },
    },
}
