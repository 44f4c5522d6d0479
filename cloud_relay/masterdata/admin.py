"""``/admin/boms``: BOM submissions on the admin page, with approve, refuse and retry forms.

Logged in like the rest of the admin page (its session cookie, or the bearer token); each form
carries a CSRF token bound to the session and a POST another site's page sends is refused
before anything changes. Parked submissions show why (a BOM changed by hand in Odoo, say).
Decisions are audited as ``<name> (admin page)``.
"""

from __future__ import annotations

import html
import logging
from urllib.parse import parse_qsl

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cloud_relay.admin.session import AdminSessions, Credential, cross_site
from cloud_relay.errors import RelayError
from cloud_relay.masterdata import service
from cloud_relay.masterdata import store as s
from cloud_relay.masterdata.config import BomConfig
from cloud_relay.masterdata.factory import BomStore

log = logging.getLogger(__name__)

PATH = "/admin/boms"
SESSION_COOKIE = "relay_admin_session"
MAX_FORM_BYTES = 8192
SHOWN = 100


def _e(value: object) -> str:
    return html.escape(str(value if value is not None else ""))


class BomAdminPage:
    """The page and its three actions."""

    def __init__(self, store: BomStore, config: BomConfig, token: str | None) -> None:
        self._store = store
        self._config = config
        self._sessions = AdminSessions(token) if token else None

    def install(self, app: FastAPI) -> None:
        router = APIRouter(include_in_schema=False)
        router.add_api_route(PATH, self.show, methods=["GET"])
        router.add_api_route(f"{PATH}/{{submission_id}}/{{action}}", self.act, methods=["POST"])
        app.include_router(router)

    def _credential(self, request: Request) -> Credential | None:
        if self._sessions is None:
            return None
        authorization = request.headers.get("authorization")
        if authorization is not None:
            return self._sessions.bearer(authorization)
        cookie = request.cookies.get(SESSION_COOKIE)
        return self._sessions.session(cookie) if cookie else None

    async def show(self, request: Request) -> Response:
        credential = self._credential(request)
        if credential is None or self._sessions is None:
            return RedirectResponse("/admin/login", 303)
        rows = await self._store.run(lambda tx: s.list_submissions(tx, SHOWN))
        audit = await self._store.run(lambda tx: s.audit_log(tx, SHOWN))
        csrf = self._sessions.csrf_token(credential)
        body = [
            "<!doctype html><html><head><meta charset='utf-8'><title>BOM revisions</title></head>",
            "<body><h1>BOM revisions</h1><p><a href='/admin'>Admin page</a></p>",
            "<table><tr><th>#</th><th>state</th><th>product</th><th>revision</th>"
            "<th>submitted by</th><th>decided by</th><th>publish after</th><th>why parked</th>"
            "<th></th></tr>",
        ]
        for r in rows:
            body.append(
                f"<tr><td>{r.id}</td><td>{_e(r.state)}</td><td>{_e(r.top_product)}</td>"
                f"<td>{_e(r.top_revision)}</td><td>{_e(r.submitted_by)}</td>"
                f"<td>{_e(r.decided_by)}</td><td>{_e(r.publish_after)}</td>"
                f"<td>{_e(r.park_reason)}</td><td>{self._forms(r, csrf)}</td></tr>"
            )
        body.append("</table><h2>Audit</h2><table>")
        for a in audit:
            body.append(
                f"<tr><td>{_e(a.at)}</td><td>{_e(a.actor)}</td><td>{_e(a.action)}</td>"
                f"<td>#{_e(a.submission_id)}</td><td>{_e(a.product)} {_e(a.revision)}</td>"
                f"<td>{_e(a.reason)}</td></tr>"
            )
        body.append("</table></body></html>")
        return HTMLResponse("".join(body))

    def _forms(self, row: s.Submission, csrf: str) -> str:
        actions = {"pending": ("approve", "refuse"), "parked": ("retry", "refuse")}
        out = []
        for action in actions.get(row.state, ()):
            out.append(
                f"<form method='post' action='{PATH}/{row.id}/{action}'>"
                f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
                "<input name='actor' placeholder='your name' required>"
                "<input name='reason' placeholder='reason'>"
                f"<button>{action}</button></form>"
            )
        return "".join(out)

    async def act(self, request: Request, submission_id: int, action: str) -> Response:
        why = cross_site(request.headers)
        if why is not None:
            return HTMLResponse(f"Refused: sent from another site ({_e(why)}).", 403)
        credential = self._credential(request)
        if credential is None or self._sessions is None:
            return HTMLResponse("Log in first.", 401)
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            return HTMLResponse("Too large.", 413)
        form = dict(parse_qsl(body.decode(errors="replace"), keep_blank_values=True))
        if not self._sessions.csrf_ok(credential, form.get("csrf", "")):
            return HTMLResponse("Refused: the form's CSRF token is not this session's.", 403)
        actor = form.get("actor", "").strip()
        reason = form.get("reason", "").strip() or None
        if not actor or action not in ("approve", "refuse", "retry"):
            return HTMLResponse("A name is needed.", 400)
        if action != "approve" and reason is None:
            return HTMLResponse("A reason is needed.", 400)
        by = f"{actor} (admin page)"
        try:
            if action == "approve":
                await service.approve(
                    self._store, self._config, submission_id, by=actor, reason=reason
                )
            elif action == "refuse":
                await service.refuse(self._store, submission_id, by=by, reason=reason or "")
            else:
                await service.retry(self._store, submission_id, by=by, reason=reason or "")
        except RelayError as exc:
            return HTMLResponse(f"Not done: {_e(exc)}", 409)
        return RedirectResponse(PATH, 303)
