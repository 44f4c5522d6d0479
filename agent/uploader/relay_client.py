"""The HTTP face of the relay: posts signed batches and sorts every answer into a :data:`Reply`.

This is the only uploader module that knows HTTP; httpx exceptions and status codes stop here
and leave as plain data that says what to do next.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.uploader.body import OutgoingBatch
from agent.uploader.config import RelayConfig
from agent.uploader.probe import LinkCheck, judge
from wire.batch import BATCH_PATH
from wire.keys import key_id
from wire.probe import PROBE_PATH, parse_probe_answer
from wire.signing import sign_request

_REASON_MAX_CHARS = 300


@dataclass(frozen=True, slots=True)
class Acked:
    """200: the relay has stored every seq up to ``acked_seq``."""

    acked_seq: int


@dataclass(frozen=True, slots=True)
class Gap:
    """409: the relay wants the upload to continue at ``expected_seq``."""

    expected_seq: int


@dataclass(frozen=True, slots=True)
class Refused:
    """The relay will not take this as sent: a person has to act (key, signature, contract)."""

    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class TooLarge:
    """413: the batch must be split."""

    reason: str


@dataclass(frozen=True, slots=True)
class Unavailable:
    """No answer, or the relay cannot store now: try again later (``retry_after`` if told)."""

    reason: str
    retry_after: float | None = None


Reply = Acked | Gap | Refused | TooLarge | Unavailable


def build_http_client(config: RelayConfig) -> httpx.AsyncClient:
    """A keep-alive client for one relay, with the configured timeout and CA bundle."""
    verify: ssl.SSLContext | bool = True
    if config.ca_file is not None:
        verify = ssl.create_default_context(cafile=str(config.ca_file))
    return httpx.AsyncClient(
        timeout=httpx.Timeout(config.timeout_seconds),
        verify=verify,
        limits=httpx.Limits(max_connections=2, max_keepalive_connections=1),
        headers={"User-Agent": "edge-agent"},
    )


class RelayClient:
    """Posts batches to ``<url>/v1/batches``, each signed afresh with the gateway key."""

    def __init__(
        self,
        config: RelayConfig,
        private_key: Ed25519PrivateKey,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        # Sign the URL exactly as httpx will send it (it lower-cases the host, drops a default
        # port): the relay verifies against what arrives.
        self._url = str(httpx.URL(config.url.rstrip("/") + BATCH_PATH))
        self._shown_url = _without_userinfo(self._url)
        self._probe_url = str(httpx.URL(config.url.rstrip("/") + PROBE_PATH))
        self._key = private_key
        self._config = config
        self._timeout = config.timeout_seconds
        self._given_client = client
        self._own_client: httpx.AsyncClient | None = None
        self._clock_skew: float | None = None

    @property
    def clock_skew_seconds(self) -> float | None:
        """The relay's clock minus ours, from its latest answer's ``Date`` (None before one)."""
        return self._clock_skew

    @property
    def url(self) -> str:
        """Where batches go (without any credentials in it)."""
        return self._shown_url

    async def aclose(self) -> None:
        """Close the connection pool if this object created it (a later post opens a new one)."""
        client, self._own_client = self._own_client, None
        if client is not None:
            await client.aclose()

    def _client(self) -> httpx.AsyncClient:
        if self._given_client is not None:
            return self._given_client
        if self._own_client is None:
            self._own_client = build_http_client(self._config)
        return self._own_client

    async def post(self, batch: OutgoingBatch) -> Reply:
        """Send ``batch`` once and say what the relay made of it."""
        headers = sign_request("POST", self._url, batch.body, self._key)
        headers["Content-Type"] = "application/json"
        if batch.content_encoding is not None:
            headers["Content-Encoding"] = batch.content_encoding
        sent_at = time.time()
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client().post(self._url, content=batch.body, headers=headers)
        except TimeoutError:
            return Unavailable(
                f"relay at {self._shown_url} did not answer within {self._timeout:g} s"
            )
        except httpx.TimeoutException as exc:
            return Unavailable(
                f"relay at {self._shown_url} did not answer within {self._timeout:g} s "
                f"({type(exc).__name__})"
            )
        except httpx.ConnectError as exc:
            return Unavailable(f"cannot connect to relay at {self._shown_url}: {_words(exc)}")
        except httpx.RemoteProtocolError as exc:
            return Unavailable(f"relay at {self._shown_url} dropped the connection: {_words(exc)}")
        except httpx.HTTPError as exc:
            return Unavailable(f"upload to {self._shown_url} failed: {_words(exc)}")
        skew = clock_skew_seconds(response.headers.get("Date"), sent_at, time.time())
        if skew is not None:
            self._clock_skew = skew
        return reply_for(response, batch)

    async def probe(self, gateway_id: str) -> LinkCheck:
        """Ask the relay, with a signed ``GET /v1/probe``, what it makes of this gateway."""
        shown = _without_userinfo(self._probe_url)
        headers = sign_request("GET", self._probe_url, b"", self._key)
        sent_at = time.time()
        try:
            async with asyncio.timeout(self._timeout):
                response = await self._client().get(self._probe_url, headers=headers)
        except TimeoutError:
            return self._unreachable(f"relay at {shown} did not answer within {self._timeout:g} s")
        except httpx.ConnectError as exc:
            return self._unreachable(f"cannot connect to relay at {shown}: {_words(exc)}")
        except httpx.HTTPError as exc:
            return self._unreachable(f"probe of {shown} failed: {_words(exc)}")
        received_at = time.time()
        answer = parse_probe_answer(_json(response))
        if answer is not None and answer.time is not None:
            # The relay's own clock to the microsecond: better than the Date header's second.
            self._clock_skew = answer.time.timestamp() - (sent_at + received_at) / 2
        else:
            skew = clock_skew_seconds(response.headers.get("Date"), sent_at, received_at)
            if skew is not None:
                self._clock_skew = skew
        return judge(
            response.status_code,
            answer,
            url=shown,
            gateway_id=gateway_id,
            key_id=key_id(self._key.public_key()),
            skew_seconds=self._clock_skew,
            at=datetime.now(UTC),
        )

    @staticmethod
    def _unreachable(words: str) -> LinkCheck:
        return LinkCheck("unreachable", words, datetime.now(UTC))


def reply_for(response: httpx.Response, batch: OutgoingBatch) -> Reply:
    """Sort one HTTP answer to ``batch`` into what the uploader does next."""
    status = response.status_code
    span = f"{batch.first_seq}..{batch.last_seq}"
    if status == 200:
        acked = _int_field(response, "acked_seq")
        if acked is None:
            return Refused(200, f"relay answered 200 without an acked_seq: {_reason(response)}")
        return Acked(acked)
    if status == 409:
        expected = _int_field(response, "expected_seq")
        if expected is None or expected < 1:
            return Refused(409, f"relay answered 409 without an expected_seq: {_reason(response)}")
        return Gap(expected)
    if status == 401:
        return Refused(status, f"relay rejected our signature (401): {_reason(response)}")
    if status == 403:
        return Refused(status, f"relay refused our key (403): {_reason(response)}")
    if status == 413:
        return TooLarge(
            f"relay refused batch {span} ({batch.count} events, {batch.raw_bytes} bytes) "
            f"as too large (413)"
        )
    if status == 422:
        return Refused(status, f"relay refused batch {span} as invalid (422): {_reason(response)}")
    if status in (429, 503) or status >= 500:
        return Unavailable(
            f"relay cannot take uploads now ({status}): {_reason(response)}",
            retry_after_seconds(response.headers.get("Retry-After")),
        )
    if 400 <= status < 500:
        return Refused(status, f"relay refused the upload ({status}): {_reason(response)}")
    return Unavailable(f"unexpected answer {status} from relay: {_reason(response)}")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or HTTP-date), or None."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def clock_skew_seconds(date: str | None, sent_at: float, received_at: float) -> float | None:
    """The relay's clock minus ours from an HTTP ``Date`` header, or None if there is none.

    ``Date`` is truncated to the second, so half a second is added; the local time taken is the
    middle of the exchange. Good to about a second, plenty to see a clock that is minutes off.
    """
    if date is None:
        return None
    try:
        when = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp() + 0.5 - (sent_at + received_at) / 2


def _int_field(response: httpx.Response, name: str) -> int | None:
    body = _json(response)
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def _json(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None


def _reason(response: httpx.Response) -> str:
    """The relay's own words for an answer: a JSON error message (with the location it names,
    if any), else the text, trimmed."""
    body = _json(response)
    text: str | None = None
    if isinstance(body, dict):
        for key in ("error", "detail", "message", "reason"):
            if isinstance(body.get(key), str):
                text = body[key]
                break
        location = body.get("location")
        if text is not None and isinstance(location, str) and location:
            text = f"{location}: {text}"
    if text is None:
        text = response.content.decode("utf-8", "replace")
    text = " ".join(text.split())
    if not text:
        return response.reason_phrase or f"HTTP {response.status_code}"
    if len(text) > _REASON_MAX_CHARS:
        return text[:_REASON_MAX_CHARS] + "…"
    return text


def _words(exc: Exception) -> str:
    text = str(exc).strip()
    return text if text else type(exc).__name__


def _without_userinfo(url: str) -> str:
    parsed = httpx.URL(url)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else url
