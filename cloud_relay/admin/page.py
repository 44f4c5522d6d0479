"""The admin page at ``/admin``: gateways, parked orders, dead letters and the audit log, with
replay and discard for a person in a browser.

It answers to the admin token like the API: as a bearer header, or traded at ``/admin/login``
for a session cookie. Every POST must come from the page itself (``Sec-Fetch-Site`` or
``Origin``) and carry the CSRF token bound to the session; each action then calls the same
service functions as the API and the CLI, is audited as ``<name> (admin page)``, and redirects
back to the page with a message naming what was done (POST-redirect-GET).

The page with its forms never reloads by itself, so nothing typed is lost; ``/admin?watch=1``
is the same page without forms that reloads every few seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, NoReturn
from urllib.parse import parse_qsl, quote, unquote

from fastapi import APIRouter, FastAPI, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_relay import __version__
from cloud_relay.admin.session import AdminSessions, Credential, cross_site, sent_over_https
from cloud_relay.admin.throttle import GuessThrottle, client_of
from cloud_relay.admin.view import (
    PAGE_PATH,
    Flash,
    Snapshot,
    Viewer,
    render_admin_page,
    render_login,
    render_notice,
)
from cloud_relay.deadletters import service
from cloud_relay.deadletters.service import DeadLetterError, InvalidRequest
from cloud_relay.errors import TransientError
from cloud_relay.inbox.store import InboxStore
from cloud_relay.metrics import RelayMetrics
from cloud_relay.posting.keys import order_name
from cloud_relay.posting.store import PostingStore

if TYPE_CHECKING:
    from cloud_relay.posting.stats import PostingStats

log = logging.getLogger(__name__)

#: Added to the name a person gives, so the audit log tells the page from the API and the CLI.
ACTOR_SUFFIX = " (admin page)"
SESSION_COOKIE = "relay_admin_session"
#: Remembers the name last given, to prefill the forms.
ACTOR_COOKIE = "relay_admin_actor"
FLASH_COOKIE = "relay_admin_flash"
#: Largest form body read; a reason is at most 2,000 characters.
MAX_FORM_BYTES = 64 * 1024
MAX_DEAD_LETTERS_SHOWN = 200
MAX_PARKED_SHOWN = 200
MAX_AUDIT_SHOWN = 50
MAX_ACTOR_CHARS = 200
MAX_REASON_CHARS = 2000
_ACTOR_COOKIE_SECONDS = 365 * 24 * 3600
_FLASH_CHARS = 600
_MAX_ID = 2**63 - 1
_LAST_SEQ_METRIC = "cloud_relay_gateway_last_seq"
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

Form = dict[str, str]
Action = Callable[[PostingStore, str, str | None, Form], Awaitable[Flash]]
DeadLetterId = Annotated[int, Path(ge=1, le=_MAX_ID)]


class PageRefusal(Exception):
    """A page request answered with a short HTML page saying why: 400, 401, 403, 413, 503."""

    def __init__(
        self,
        status: int,
        title: str,
        text: str,
        *,
        login_link: bool = False,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(text)
        self.status = status
        self.title = title
        self.login_link = login_link
        self.retry_after = retry_after


class AdminPage:
    """The page's routes over the stores it shows; ``token`` None answers every route 503."""

    def __init__(
        self,
        inbox: InboxStore,
        token: str | None,
        *,
        posting_store: PostingStore | None = None,
        metrics: RelayMetrics | None = None,
        writer_stats: Callable[[], PostingStats] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        token_key: str = "token_file",
        writer_off: str = "no [odoo] section",
        throttle: GuessThrottle | None = None,
        behind_tls_proxy: bool = False,
    ) -> None:
        self._token_key = token_key
        self._writer_off = writer_off
        self._throttle = throttle or GuessThrottle()
        self._behind_tls_proxy = behind_tls_proxy
        self._inbox = inbox
        self._sessions = AdminSessions(token) if token else None
        self._posting = posting_store
        self._metrics = metrics
        self._writer_stats = writer_stats
        self._clock = clock

    def install(self, app: FastAPI) -> None:
        """Add the page's routes, kept out of the OpenAPI document, and its error pages."""
        router = APIRouter(include_in_schema=False)
        router.add_api_route(PAGE_PATH, self.show, methods=["GET"])
        router.add_api_route(f"{PAGE_PATH}/login", self.login_form, methods=["GET"])
        router.add_api_route(f"{PAGE_PATH}/login", self.login, methods=["POST"])
        router.add_api_route(f"{PAGE_PATH}/logout", self.logout, methods=["POST"])
        router.add_api_route(
            f"{PAGE_PATH}/deadletters/{{dead_letter_id}}/replay", self.replay, methods=["POST"]
        )
        router.add_api_route(
            f"{PAGE_PATH}/deadletters/{{dead_letter_id}}/discard", self.discard, methods=["POST"]
        )
        router.add_api_route(f"{PAGE_PATH}/orders/replay", self.replay_order, methods=["POST"])
        app.include_router(router)

        async def refused(request: Request, exc: Exception) -> Response:
            assert isinstance(exc, PageRefusal)
            page = render_notice(exc.title, str(exc), login_link=exc.login_link)
            response = _html(page, exc.status)
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Bearer"
            if exc.status == 503:
                response.headers["Retry-After"] = "5"
            if exc.retry_after is not None:
                response.headers["Retry-After"] = str(exc.retry_after)
            return response

        app.add_exception_handler(PageRefusal, refused)

    async def show(self, request: Request) -> Response:
        """The page, or a redirect to the login form."""
        sessions = self._configured()
        credential = self._credential(request, sessions)
        if credential is None:
            if "authorization" in request.headers:
                _refuse_unauthenticated()
            return RedirectResponse(f"{PAGE_PATH}/login", 303)
        flash = _read_flash(request.cookies.get(FLASH_COOKIE))
        viewer = Viewer(
            csrf=sessions.csrf_token(credential),
            actor=unquote(request.cookies.get(ACTOR_COOKIE, "")),
            watch="watch" in request.query_params,
            flash=flash,
        )
        response = _html(render_admin_page(await self._snapshot(), viewer))
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path=PAGE_PATH, httponly=True, samesite="strict")
        return response

    async def login_form(self, request: Request) -> Response:
        """The login form, or the page when the session is still good."""
        sessions = self._configured()
        if self._credential(request, sessions) is not None:
            return RedirectResponse(PAGE_PATH, 303)
        return _html(render_login(token_key=self._token_key))

    async def login(self, request: Request) -> Response:
        """Trade the admin token for a session cookie."""
        sessions = self._configured()
        _refuse_cross_site(request)
        self._refuse_locked_out(request)
        form = await _read_form(request)
        if not sessions.token_ok(form.get("token", "")):
            log.warning("admin page: login with a wrong token")
            self._throttle.failed(client_of(request), request.url.path)
            return _html(
                render_login("That is not the admin token.", token_key=self._token_key), 401
            )
        self._throttle.succeeded(client_of(request))
        log.info("admin page: logged in")
        response = RedirectResponse(PAGE_PATH, 303)
        response.set_cookie(
            SESSION_COOKIE,
            sessions.issue(),
            max_age=sessions.max_age_seconds,
            path=PAGE_PATH,
            secure=self._secure(request),
            httponly=True,
            samesite="strict",
        )
        return response

    async def logout(self, request: Request) -> Response:
        """End the session in this browser."""
        await self._authorised_form(request)
        response = RedirectResponse(f"{PAGE_PATH}/login", 303)
        response.delete_cookie(SESSION_COOKIE, path=PAGE_PATH, httponly=True, samesite="strict")
        return response

    async def replay(self, request: Request, dead_letter_id: DeadLetterId) -> Response:
        """Queue one dead letter's event again."""

        async def act(posting: PostingStore, actor: str, reason: str | None, _: Form) -> Flash:
            result = await service.replay(
                posting, ids=[dead_letter_id], actor=actor + ACTOR_SUFFIX, reason=reason
            )
            if not result.replayed:
                why = result.skipped[0].reason
                return Flash("bad", f"Dead letter {dead_letter_id} was not replayed: {why}.")
            done = result.replayed[0]
            log.info(
                "admin page: replayed dead letter %d", done.id, extra={"order": done.order_key}
            )
            return Flash(
                "ok",
                f"Replayed dead letter {done.id} ({_order(done.order_key)}): its event is queued "
                "again behind the order's pending events.",
            )

        return await self._act(request, act, reason_required=False)

    async def discard(self, request: Request, dead_letter_id: DeadLetterId) -> Response:
        """Close one dead letter without posting it; a reason is required."""

        async def act(posting: PostingStore, actor: str, reason: str | None, _: Form) -> Flash:
            assert reason is not None
            letter = await service.discard(
                posting, dead_letter_id, actor=actor + ACTOR_SUFFIX, reason=reason
            )
            log.info(
                "admin page: discarded dead letter %d", letter.id, extra={"order": letter.order_key}
            )
            return Flash(
                "ok", f"Discarded dead letter {letter.id} ({_order(letter.order_key)}): {reason}"
            )

        return await self._act(request, act, reason_required=True)

    async def replay_order(self, request: Request) -> Response:
        """Queue again every dead letter of one order."""

        async def act(posting: PostingStore, actor: str, reason: str | None, form: Form) -> Flash:
            order = form.get("order", "")
            result = await service.replay(
                posting, order=order, actor=actor + ACTOR_SUFFIX, reason=reason
            )
            name, count = _order(order.strip()), len(result.replayed)
            if not count:
                return Flash("bad", f"No dead letter of {name} was left to replay.")
            log.info("admin page: replayed %d dead letters", count, extra={"order": order})
            noun = "dead letter" if count == 1 else "dead letters"
            return Flash("ok", f"Replayed {count} {noun} of {name}: their events are queued again.")

        return await self._act(request, act, reason_required=False)

    async def _act(self, request: Request, action: Action, *, reason_required: bool) -> Response:
        """Run ``action`` for a POST that passes every check, then redirect back to the page
        with what it did; a request the service refuses changes nothing and says why."""
        form = await self._authorised_form(request)
        if self._posting is None:
            raise PageRefusal(503, "Not set up", "No Odoo writer is configured.")
        actor = form.get("actor", "").strip()
        try:
            reason = _action_inputs(actor, form.get("reason", ""), reason_required)
            flash = await action(self._posting, actor, reason, form)
        except DeadLetterError as exc:
            flash = Flash("bad", f"Nothing was done: {exc}.")
        except TransientError as exc:
            _refuse_unavailable(exc)
        return _done(actor, flash, secure=self._secure(request))

    def _configured(self) -> AdminSessions:
        if self._sessions is None:
            raise PageRefusal(
                503, "Not set up", "No admin token is configured: set [admin] token_file."
            )
        return self._sessions

    def _credential(self, request: Request, sessions: AdminSessions) -> Credential | None:
        authorization = request.headers.get("authorization")
        if authorization is not None:
            self._refuse_locked_out(request)
            credential = sessions.bearer(authorization)
            if credential is None:
                self._throttle.failed(client_of(request), request.url.path)
            else:
                self._throttle.succeeded(client_of(request))
            return credential
        cookie = request.cookies.get(SESSION_COOKIE)
        return sessions.session(cookie) if cookie else None

    def _refuse_locked_out(self, request: Request) -> None:
        """429 before the token is even compared, while this client is locked out."""
        wait = self._throttle.wait_seconds(client_of(request))
        if wait:
            raise PageRefusal(
                429,
                "Too many wrong tokens",
                f"Too many wrong admin tokens came from your address: try again in {wait} s.",
                retry_after=wait,
            )

    def _secure(self, request: Request) -> bool:
        return sent_over_https(
            request.url.scheme, request.headers, behind_tls_proxy=self._behind_tls_proxy
        )

    async def _authorised_form(self, request: Request) -> Form:
        """The form of a POST from this page by someone logged in; PageRefusal otherwise, before
        anything is changed."""
        sessions = self._configured()
        _refuse_cross_site(request)
        credential = self._credential(request, sessions)
        if credential is None:
            _refuse_unauthenticated()
        form = await _read_form(request)
        if not sessions.csrf_ok(credential, form.get("csrf", "")):
            log.warning("admin page: POST %s without a valid CSRF token", request.url.path)
            raise PageRefusal(
                403,
                "Refused",
                "The form's CSRF token is missing or belongs to another session: nothing was "
                "done. Reload the page and try again.",
            )
        return form

    async def _snapshot(self) -> Snapshot:
        try:
            gateways = await self._inbox.list_gateways()
            seen = _last_seq_seen(self._metrics) if self._metrics is not None else None
            writer = self._writer_stats() if self._writer_stats is not None else None
            if self._posting is None:
                return Snapshot(
                    self._clock(),
                    __version__,
                    gateways,
                    seen,
                    writer,
                    None,
                    writer_off=self._writer_off,
                )
            counts = await self._posting.counts()
            parked = (await self._posting.parked_orders())[:MAX_PARKED_SHOWN]
            dead = await service.list_dead(self._posting, limit=MAX_DEAD_LETTERS_SHOWN)
            audit = await self._posting.audit_log(MAX_AUDIT_SHOWN)
        except TransientError as exc:
            _refuse_unavailable(exc)
        return Snapshot(
            self._clock(),
            __version__,
            gateways,
            seen,
            writer,
            counts,
            parked,
            dead,
            audit,
            writer_off=self._writer_off,
        )


def _action_inputs(actor: str, reason_text: str, reason_required: bool) -> str | None:
    """The reason given; InvalidRequest (nothing done) for a missing name or reason."""
    if not actor or len(actor) > MAX_ACTOR_CHARS:
        raise InvalidRequest(f"give your name (at most {MAX_ACTOR_CHARS} characters)")
    reason = reason_text.strip() or None
    if reason is not None and len(reason) > MAX_REASON_CHARS:
        raise InvalidRequest(f"a reason is at most {MAX_REASON_CHARS} characters")
    if reason_required and reason is None:
        raise InvalidRequest("a discard needs a reason")
    return reason


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status, headers=_HEADERS)


def _done(actor: str, flash: Flash, *, secure: bool) -> Response:
    """Back to the page, which shows ``flash`` once; remembers ``actor`` for the next form."""
    response = RedirectResponse(PAGE_PATH, 303)
    text = flash.text if len(flash.text) <= _FLASH_CHARS else flash.text[:_FLASH_CHARS] + "…"
    response.set_cookie(
        FLASH_COOKIE,
        quote(f"{flash.kind}:{text}", safe=""),
        max_age=60,
        path=PAGE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    if not actor or len(actor) > MAX_ACTOR_CHARS:
        return response
    response.set_cookie(
        ACTOR_COOKIE,
        quote(actor, safe=""),
        max_age=_ACTOR_COOKIE_SECONDS,
        path=PAGE_PATH,
        secure=secure,
        httponly=True,
        samesite="strict",
    )
    return response


def _read_flash(cookie: str | None) -> Flash | None:
    if not cookie:
        return None
    kind, _, text = unquote(cookie).partition(":")
    if kind == "ok":
        return Flash("ok", text)
    if kind == "bad":
        return Flash("bad", text)
    return None


async def _read_form(request: Request) -> Form:
    """A URL-encoded form body, first value of each field; refused when too large or not UTF-8."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PageRefusal(413, "Too large", "The form is larger than any this page sends.")
    try:
        fields = parse_qsl(
            body.decode(), keep_blank_values=True, max_num_fields=20, errors="strict"
        )
    except ValueError as exc:
        raise PageRefusal(400, "Unreadable form", "The form cannot be read.") from exc
    form: Form = {}
    for name, value in fields:
        form.setdefault(name, value)
    return form


def _refuse_cross_site(request: Request) -> None:
    why = cross_site(request.headers)
    if why is not None:
        log.warning("admin page: refused a cross-site POST %s (%s)", request.url.path, why)
        raise PageRefusal(
            403, "Refused", f"This form was sent from another site ({why}): nothing was done."
        )


def _refuse_unauthenticated() -> NoReturn:
    raise PageRefusal(401, "Log in first", "A valid admin token is required.", login_link=True)


def _refuse_unavailable(exc: TransientError) -> NoReturn:
    log.warning("admin page: store unavailable: %s", exc, extra={"error": str(exc)})
    raise PageRefusal(503, "Unavailable", "The store is unreachable; try again shortly.") from exc


def _last_seq_seen(metrics: RelayMetrics) -> dict[str, int]:
    """The highest seq this replica saw per gateway, as /metrics exposes it."""
    seen: dict[str, int] = {}
    for family in metrics.registry.restricted_registry([_LAST_SEQ_METRIC]).collect():
        for sample in family.samples:
            if sample.name == _LAST_SEQ_METRIC:
                seen[sample.labels["gateway_id"]] = int(sample.value)
    return seen


def _order(order_key: str) -> str:
    return order_name(order_key) or order_key
