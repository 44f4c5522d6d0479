"""``POST /v1/batches``: verify, decode, validate and store one gateway batch.

Order matters: the signature is verified from the headers alone (an unsigned or forged upload
is refused before a byte of its body is read), the body is then read under a size cap and a
budget of bytes read at once, checked against the signed digest as sent, and only then
decompressed (under a second cap) and parsed. A 200 is
sent only once the inbox has committed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from cloud_relay.config import ServerConfig
from cloud_relay.errors import (
    DuplicateEventError,
    RejectedError,
    RelayError,
    SequenceGapError,
    TransientError,
)
from cloud_relay.inbox.store import InboxEvent, InboxStore
from cloud_relay.ingest.budget import BodyBudget, BudgetStats
from cloud_relay.ingest.decode import (
    BodyTooLargeError,
    MalformedEncodingError,
    UnsupportedEncodingError,
    decode_body,
    normalise_encoding,
    read_capped,
)
from cloud_relay.ingest.verify import (
    RevokedKeyError,
    VerifiedSender,
    signature_key_ids,
    verify_sender,
)
from cloud_relay.metrics import RelayMetrics
from wire.batch import Batch, parse_batch
from wire.errors import (
    SignatureError,
    StaleSignatureError,
    UnknownKeyError,
    WireValidationError,
)
from wire.signing import SignedHeaders

log = logging.getLogger(__name__)


class _Refusal(Exception):
    """A batch answered with an error; carries everything the answer and the log need."""

    def __init__(
        self,
        status: int,
        reason: str,
        body: dict[str, Any],
        *,
        level: int = logging.INFO,
        events: int = 0,
        headers: dict[str, str] | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(detail or body.get("error", reason))
        self.status = status
        self.reason = reason
        self.body = body
        self.level = level
        self.events = events
        self.headers = headers


class BatchEndpoint:
    """The ingest of one replica: what it needs is passed in, nothing is global."""

    def __init__(
        self,
        store: InboxStore,
        config: ServerConfig,
        metrics: RelayMetrics,
        on_stored: Callable[[], None] | None = None,
    ) -> None:
        self._store = store
        self._config = config
        self._metrics = metrics
        self._on_stored = on_stored
        self._budget = BodyBudget(config.max_inflight_body_bytes)

    def budget_stats(self) -> BudgetStats:
        """Body bytes reserved now and at most, and uploads turned away for want of room."""
        return self._budget.stats()

    async def handle(self, request: Request) -> Response:
        """Answer one upload; every refusal is counted and logged once."""
        context: dict[str, Any] = {"key_id": _claimed_key_id(request)}
        try:
            acked = await self._accept(request, context)
        except _Refusal as refusal:
            self._metrics.refused(refusal.reason, refusal.events)
            log.log(
                refusal.level,
                "batch refused (%d %s): %s",
                refusal.status,
                refusal.reason,
                refusal,
                extra={**context, "reason": refusal.reason, "status": refusal.status},
            )
            return JSONResponse(refusal.body, refusal.status, headers=refusal.headers)
        return JSONResponse({"acked_seq": acked})

    async def _accept(self, request: Request, context: dict[str, Any]) -> int:
        try:
            encoding = normalise_encoding(request.headers.get("content-encoding"))
        except UnsupportedEncodingError as exc:
            raise _Refusal(415, "unsupported_encoding", {"error": str(exc)}) from exc
        # Who signed is settled from the headers alone: nothing unsigned is ever read.
        sender, signed = await self._verify(request)
        context.update(key_id=sender.key_id, gateway_id=sender.gateway_id)
        size = self._reservation(request.headers.get("content-length"))
        if not self._budget.reserve(size):
            raise _Refusal(
                503,
                "busy",
                {"error": "too many uploads are being read at once; retry later"},
                level=logging.WARNING,
                headers={"Retry-After": str(self._config.retry_after_seconds)},
            )
        try:
            return await self._read_and_store(request, context, sender, signed, encoding)
        finally:
            self._budget.release(size)

    def _reservation(self, content_length: str | None) -> int:
        """What an upload may hold in memory: its declared length, else the body cap."""
        declared = (content_length or "").strip()
        if declared.isdigit() and int(declared) <= self._config.max_body_bytes:
            return int(declared)
        return self._config.max_body_bytes

    async def _read_and_store(
        self,
        request: Request,
        context: dict[str, Any],
        sender: VerifiedSender,
        signed: SignedHeaders,
        encoding: str,
    ) -> int:
        try:
            raw = await read_capped(
                request.headers.get("content-length"),
                request.stream(),
                self._config.max_body_bytes,
            )
        except BodyTooLargeError as exc:
            raise _Refusal(413, "body_too_large", {"error": str(exc)}) from exc
        except ClientDisconnect as exc:
            # The gateway's link dropped mid-upload (a WAN cut): nobody reads this answer and
            # the gateway sends the batch again, so it is counted, not an error of the relay.
            raise _Refusal(
                400, "client_disconnected", {"error": "the client went away while sending"}
            ) from exc
        try:
            signed.check_body(raw)
        except SignatureError as exc:
            raise _Refusal(401, "bad_signature", _err(exc), level=logging.WARNING) from exc
        batch, events = await asyncio.to_thread(self._decode, raw, encoding)
        context.update(first_seq=batch.first_seq, last_seq=batch.last_seq)
        if batch.gateway_id != sender.gateway_id:
            raise _Refusal(
                403,
                "wrong_gateway",
                {"error": f"key {sender.key_id} is not registered to gateway {batch.gateway_id!r}"},
                level=logging.WARNING,
                events=len(events),
            )
        self._metrics.observe_gateway(sender.gateway_id, last_seq=batch.last_seq)
        try:
            with self._metrics.timing("store_batch"):
                result = await self._store.store_batch(
                    sender.gateway_id, sender.key_id, batch.first_seq, events
                )
        except SequenceGapError as exc:
            self._metrics.observe_gateway(sender.gateway_id, acked_seq=exc.expected_seq - 1)
            raise _Refusal(
                409,
                "sequence_gap",
                {"error": str(exc), "expected_seq": exc.expected_seq},
                events=len(events),
            ) from exc
        except DuplicateEventError as exc:
            raise _Refusal(
                409,
                "duplicate_event",
                {"error": str(exc), "event_id": exc.event_id},
                level=logging.WARNING,
                events=len(events),
            ) from exc
        except RejectedError as exc:
            # Valid on the wire but not storable as it is: resending cannot help, so no 503.
            raise _Refusal(
                422, "unstorable_batch", {"error": str(exc), "location": ""}, events=len(events)
            ) from exc
        except RelayError as exc:
            raise self._unavailable(exc, len(events)) from exc
        self._metrics.accepted(
            sender.gateway_id, batch.last_seq, len(events), result.stored, result.acked_seq
        )
        if result.stored and self._on_stored is not None:
            self._on_stored()
        log.debug(
            "batch stored: %d new of %d",
            result.stored,
            len(events),
            extra={**context, "seq": result.acked_seq},
        )
        return result.acked_seq

    async def _verify(self, request: Request) -> tuple[VerifiedSender, SignedHeaders]:
        sender, signed = await self._verify_signature(request)
        if sender.role != "gateway":
            error = {"error": f"key {sender.key_id} is a {sender.role} key: it cannot send events"}
            raise _Refusal(403, "wrong_role", error, level=logging.WARNING)
        return sender, signed

    async def _verify_signature(self, request: Request) -> tuple[VerifiedSender, SignedHeaders]:
        try:
            return await verify_sender(
                self._store,
                self._metrics,
                request.method,
                self._verified_url(request),
                request.headers,
                self._config.max_skew_seconds,
            )
        except RelayError as exc:
            raise self._unavailable(exc, 0) from exc
        except RevokedKeyError as exc:
            raise _Refusal(403, "revoked_key", _err(exc), level=logging.WARNING) from exc
        except UnknownKeyError as exc:
            raise _Refusal(403, "unknown_key", _err(exc), level=logging.WARNING) from exc
        except StaleSignatureError as exc:
            raise _Refusal(401, "stale_signature", _err(exc), level=logging.WARNING) from exc
        except SignatureError as exc:
            raise _Refusal(401, "bad_signature", _err(exc), level=logging.WARNING) from exc

    def _verified_url(self, request: Request) -> str:
        """The URL the gateway signed: the public base URL behind a proxy, else as received."""
        if self._config.public_url is None:
            return str(request.url)
        query = request.url.query
        url = self._config.public_url.rstrip("/") + request.url.path
        return f"{url}?{query}" if query else url

    def _decode(self, raw: bytes, encoding: str) -> tuple[Batch, list[InboxEvent]]:
        """Decompress, parse and re-encode canonically; CPU work, run off the event loop."""
        try:
            body = decode_body(raw, encoding, self._config.max_decoded_bytes)
        except BodyTooLargeError as exc:
            raise _Refusal(413, "decoded_too_large", {"error": str(exc)}) from exc
        except MalformedEncodingError as exc:
            raise _Refusal(422, "malformed_encoding", {"error": str(exc), "location": ""}) from exc
        try:
            batch = parse_batch(body)
        except WireValidationError as exc:
            raise _Refusal(
                422,
                "invalid_batch",
                {"error": exc.message, "location": exc.location},
                detail=str(exc),
            ) from exc
        return batch, inbox_events(batch)

    def _unavailable(self, exc: RelayError, events: int) -> _Refusal:
        """503 for any inbox failure: transient ones are expected, others need a person."""
        retry = str(self._config.retry_after_seconds)
        return _Refusal(
            503,
            "store_unavailable",
            {"error": "the inbox cannot write right now; retry later"},
            level=logging.WARNING if isinstance(exc, TransientError) else logging.ERROR,
            events=events,
            headers={"Retry-After": retry},
            detail=f"inbox unavailable: {exc}",
        )


def inbox_events(batch: Batch) -> list[InboxEvent]:
    """The batch's events as the inbox stores them, each with its canonical JSON."""
    # Filling the slots directly skips the frozen dataclass's five object.__setattr__ calls,
    # half the cost per event here; InboxEvent has no __post_init__ to miss (a test compares
    # the result with InboxEvent's own constructor).
    new = object.__new__
    id_, seq, type_, occurred_at, body = _INBOX_EVENT_SLOTS
    events: list[InboxEvent] = []
    for event, encoded in zip(batch.events, batch.encoded_events(), strict=True):
        stored = new(InboxEvent)
        id_(stored, event.id)
        seq(stored, event.seq)
        type_(stored, event.type)
        occurred_at(stored, event.occurred_at)
        body(stored, encoded)
        events.append(stored)
    return events


_INBOX_EVENT_SLOTS: tuple[Callable[[InboxEvent, Any], None], ...] = tuple(
    getattr(InboxEvent, name).__set__ for name in ("id", "seq", "type", "occurred_at", "body")
)


def _err(exc: Exception) -> dict[str, Any]:
    return {"error": str(exc)}


def _claimed_key_id(request: Request) -> str | None:
    """The key id a request names, for logs before it is verified (not trusted)."""
    claimed = signature_key_ids(request.headers.get("signature-input"))
    return claimed[0] if claimed else None
