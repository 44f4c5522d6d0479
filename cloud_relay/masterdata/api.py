"""``POST /v1/boms``: a PLM connector submits BOM revisions, signed like gateway batches
(RFC 9421, Ed25519, Content-Digest) but with a key registered in the ``publisher`` role; and
the publishing job's figures on ``/metrics``.

Answers: 201 submitted (waiting for approval), 200 the same revisions were submitted before
(nothing changed), 401 bad signature, 403 unknown/revoked key or a gateway key, 409 a revision
rule (immutable, out of sequence), 413 too large, 422 a field or a validation rule (every
problem with its location), 503 the store or Odoo unreachable (retry later).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from cloud_relay.config import RelaySettings
from cloud_relay.errors import RelayError, TransientError
from cloud_relay.inbox.store import InboxStore
from cloud_relay.ingest.verify import RevokedKeyError, verify_sender
from cloud_relay.masterdata import service
from cloud_relay.masterdata.factory import BomStore
from cloud_relay.masterdata.job import BomJobStats
from cloud_relay.masterdata.service import BomInvalid
from cloud_relay.masterdata.store import BomRejected
from cloud_relay.metrics import RelayMetrics
from cloud_relay.odoo.client import OdooClient
from wire.bom import BOMS_PATH, parse_submission
from wire.errors import SignatureError, UnknownKeyError, WireValidationError

log = logging.getLogger(__name__)


def _answer(status: int, body: dict[str, Any]) -> JSONResponse:
    return JSONResponse(body, status)


class BomEndpoint:
    """The handler of ``POST /v1/boms`` for one replica."""

    def __init__(
        self,
        inbox: InboxStore,
        store: BomStore,
        settings: RelaySettings,
        metrics: RelayMetrics,
        on_submitted: Callable[[], None] | None = None,
    ) -> None:
        self._inbox = inbox
        self._store = store
        self._settings = settings
        self._metrics = metrics
        self._on_submitted = on_submitted

    def _url(self, request: Request) -> str:
        public = self._settings.server.public_url
        if public is None:
            return str(request.url)
        return public.rstrip("/") + request.url.path

    async def handle(self, request: Request) -> JSONResponse:
        limit = self._settings.server.max_body_bytes
        try:
            # Who signed is settled from the headers alone: an unsigned body is never read.
            sender, signed = await verify_sender(
                self._inbox,
                self._metrics,
                request.method,
                self._url(request),
                request.headers,
                self._settings.server.max_skew_seconds,
            )
            body = await request.body()
            if len(body) > limit:
                return _answer(413, {"error": f"body over {limit} bytes"})
            signed.check_body(body)
        except RevokedKeyError as exc:
            return _answer(403, {"error": str(exc)})
        except UnknownKeyError as exc:
            return _answer(403, {"error": str(exc)})
        except SignatureError as exc:
            return _answer(401, {"error": str(exc)})
        except RelayError as exc:
            return _answer(503, {"error": f"the store is unavailable: {exc}"})
        if sender.role != "publisher":
            return _answer(
                403, {"error": f"key {sender.key_id} is a {sender.role} key: it cannot submit BOMs"}
            )
        try:
            submission = parse_submission(json.loads(body))
        except json.JSONDecodeError as exc:
            return _answer(422, {"error": f"not JSON: {exc}", "location": ""})
        except WireValidationError as exc:
            return _answer(422, {"error": exc.message, "location": exc.location})
        if self._settings.odoo is None:
            return _answer(503, {"error": "no [odoo] configured: BOMs are checked against Odoo"})
        try:
            odoo = await OdooClient.connect(self._settings.odoo)
            try:
                outcome = await service.submit(
                    self._store,
                    odoo,
                    self._settings.bom,
                    submission,
                    by=sender.gateway_id,
                    via=f"api key {sender.key_id}",
                )
            finally:
                await odoo.close()
        except BomInvalid as exc:
            problems = [
                {"location": p.location, "label": p.label, "message": p.message}
                for p in exc.problems
            ]
            return _answer(422, {"error": str(exc), "problems": problems})
        except BomRejected as exc:
            return _answer(409, {"error": str(exc)})
        except TransientError as exc:
            return _answer(503, {"error": f"retry later: {exc}"})
        log.info(
            "BOM submission #%d from %s (%s)",
            outcome.id,
            sender.gateway_id,
            "new" if outcome.created else "already known",
            extra={"gateway_id": sender.gateway_id, "submission": outcome.id},
        )
        status = 201 if outcome.created else 200
        return _answer(status, {"id": outcome.id, "created": outcome.created})


def install_bom_api(app: FastAPI, endpoint: BomEndpoint) -> None:
    """Add ``POST /v1/boms`` to the relay's app."""

    async def post_boms(request: Request) -> JSONResponse:
        return await endpoint.handle(request)

    app.add_api_route(
        BOMS_PATH,
        post_boms,
        methods=["POST"],
        summary="Submit signed BOM revisions (publisher keys)",
        response_model=None,
        tags=["masterdata"],
    )


class BomCollector(Collector):
    """The publishing job's ``stats()`` as ``cloud_relay_bom_*`` metrics."""

    def __init__(self, stats: Callable[[], BomJobStats]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats()
        gauges = {
            "pending": ("Submissions waiting for approval.", stats.pending),
            "approved": (
                "Approved submissions not yet published (effective date ahead).",
                stats.approved,
            ),
            "parked": (
                "Submissions parked (a BOM changed by hand in Odoo, or refused).",
                stats.parked_now,
            ),
            "lease_held": (
                "1 when this replica holds the publishing lease.",
                int(stats.lease_held),
            ),
        }
        for name, (text, value) in gauges.items():
            gauge = GaugeMetricFamily(f"cloud_relay_bom_{name}", text)
            gauge.add_metric([], value)
            yield gauge
        counters = {
            "published": ("Submissions published by this replica.", stats.published),
            "parkings": ("Submissions this replica parked.", stats.parked),
            "rounds": ("Publishing rounds run.", stats.rounds),
            "failed_rounds": (
                "Rounds that failed (store or Odoo unreachable).",
                stats.failed_rounds,
            ),
        }
        for name, (text, value) in counters.items():
            counter = CounterMetricFamily(f"cloud_relay_bom_{name}", text)
            counter.add_metric([], value)
            yield counter
