"""``GET /v1/probe``: a gateway checks its link before it has anything to send.

Signed like a batch and verified the same way, it tells the gateway whether its key is
registered (and to which gateway id), revoked or unknown, how far the relay has its events, and
the relay's clock. It stores nothing; see :mod:`wire.probe` for the answers.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cloud_relay.config import ServerConfig
from cloud_relay.errors import RelayError
from cloud_relay.inbox.store import InboxStore
from cloud_relay.ingest.verify import RevokedKeyError, signature_key_ids, verify_sender
from cloud_relay.metrics import RelayMetrics
from wire.errors import SignatureError, StaleSignatureError, UnknownKeyError
from wire.probe import PROBE_PATH, KeyState, probe_body

log = logging.getLogger(__name__)

_RESPONSES: dict[int | str, dict[str, str]] = {
    200: {"description": "The key is registered: its gateway id, acked seq and the relay's time."},
    401: {"description": "Bad or stale signature (`stale: true`: the clocks differ too much)."},
    403: {"description": "Unknown or revoked key (`key`: `unknown` or `revoked`)."},
    503: {"description": "The inbox cannot be read right now."},
}


class ProbeEndpoint:
    """Answers probes from the keys registered in ``store``."""

    def __init__(self, store: InboxStore, config: ServerConfig, metrics: RelayMetrics) -> None:
        self._store = store
        self._config = config
        self._metrics = metrics

    async def handle(self, request: Request) -> Response:
        """Verify the probe's signature and say what the relay makes of its key."""
        claimed = signature_key_ids(request.headers.get("signature-input"))
        key_id = claimed[0] if claimed else None
        try:
            # The signature is checked from the headers first: an unsigned body is never read.
            sender, signed = await verify_sender(
                self._store,
                self._metrics,
                request.method,
                self._verified_url(request),
                request.headers,
                self._config.max_skew_seconds,
            )
            signed.check_body(await request.body())
            acked = await self._store.acked_seq(sender.gateway_id)
        except RelayError as exc:
            log.warning("probe: inbox unavailable: %s", exc, extra={"error": str(exc)})
            return self._answer(
                503,
                error="the inbox cannot be read right now; retry later",
                headers={"Retry-After": str(self._config.retry_after_seconds)},
            )
        except RevokedKeyError as exc:
            return self._refused(403, exc, key_id, key="revoked")
        except UnknownKeyError as exc:
            return self._refused(403, exc, key_id, key="unknown")
        except StaleSignatureError as exc:
            return self._refused(401, exc, key_id, stale=True)
        except SignatureError as exc:
            return self._refused(401, exc, key_id)
        return self._answer(
            200,
            key="registered",
            gateway_id=sender.gateway_id,
            key_id=sender.key_id,
            acked_seq=acked,
        )

    def _refused(
        self,
        status: int,
        exc: Exception,
        key_id: str | None,
        *,
        key: KeyState | None = None,
        stale: bool = False,
    ) -> Response:
        log.info(
            "probe refused (%d): %s",
            status,
            exc,
            extra={"key_id": key_id, "status": status, "error": str(exc)},
        )
        return self._answer(
            status,
            key=key,
            key_id=key_id if key else None,
            error=str(exc),
            stale=stale,
        )

    def _answer(
        self,
        status: int,
        *,
        key: KeyState | None = None,
        gateway_id: str | None = None,
        key_id: str | None = None,
        acked_seq: int | None = None,
        error: str | None = None,
        stale: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = probe_body(
            datetime.now(UTC),
            key=key,
            gateway_id=gateway_id,
            key_id=key_id,
            acked_seq=acked_seq,
            error=error,
            stale=stale,
        )
        return JSONResponse(body, status, headers={"Cache-Control": "no-store", **(headers or {})})

    def _verified_url(self, request: Request) -> str:
        """The URL the gateway signed: the public base URL behind a proxy, else as received."""
        if self._config.public_url is None:
            return str(request.url)
        query = request.url.query
        url = self._config.public_url.rstrip("/") + request.url.path
        return f"{url}?{query}" if query else url


def install_probe(
    app: FastAPI, store: InboxStore, config: ServerConfig, metrics: RelayMetrics
) -> None:
    """Add ``GET /v1/probe`` to ``app``."""
    endpoint = ProbeEndpoint(store, config, metrics)

    async def probe(request: Request) -> Response:
        return await endpoint.handle(request)

    app.add_api_route(
        PROBE_PATH,
        probe,
        methods=["GET"],
        summary="Check a gateway's link: key registered, acked seq, the relay's clock",
        response_model=None,
        responses=_RESPONSES,
        tags=["ingest"],
    )
