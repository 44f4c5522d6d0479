"""The admin page's HTML: what the relay holds and what waits on a person, in words.

Plain HTML and CSS, no scripts and nothing fetched from elsewhere, like the agent's health page,
from Jinja2 templates in ``templates/`` that escape every value they are given.
Everything shown comes from one :class:`Snapshot`; the only figure worked out here is a
gateway's lag, from the highest seq this replica saw and the ack point in the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cloud_relay.admin.session import SESSION_MAX_AGE_SECONDS
from cloud_relay.deadletters.service import dead_letter_dict
from cloud_relay.inbox.store import GatewayInfo
from cloud_relay.posting.keys import order_name
from cloud_relay.posting.store import AuditEntry, DeadLetter, OrderState, PostingCounts
from runtime.durations import human_duration as _duration

if TYPE_CHECKING:
    from cloud_relay.posting.stats import PostingStats

#: Seconds between reloads of the read-only (watch) view.
REFRESH_SECONDS = 10
#: The page lives here; its forms post below it.
PAGE_PATH = "/admin"
#: Characters of Odoo's message shown before it is folded away.
_SUMMARY_CHARS = 140
_STATE_CLASSES = {
    "posting": "ok",
    "connecting": "warn",
    "odoo unavailable": "bad",
    "odoo refuses": "bad",
    "restarting": "bad",
    "store unavailable": "bad",
}

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1d;background:#f4f4f2}
main{max-width:80em;margin:0 auto;padding:1em}
header h1{margin:.2em 0;font-size:1.6em}
.identity{color:#444;margin:.3em 0 .8em}
.logout{float:right;margin-top:.4em}
#status table{width:auto}
.flash{padding:.6em 1em;border-radius:.3em;color:#fff;font-weight:bold}
.flash.ok{background:#1b7f3b;color:#fff}
.flash.bad{background:#b00020;color:#fff}
section{background:#fff;border:1px solid #ddd;border-radius:.3em;padding:.6em 1em;margin:1em 0}
section h2{font-size:1.2em;margin:.2em 0 .5em}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-weight:normal;color:#555;padding:.2em 1em .2em 0;vertical-align:top;
white-space:nowrap}
td{padding:.2em 1em .2em 0;vertical-align:top}
.list th{font-weight:bold;color:#333;border-bottom:1px solid #ddd}
.list td{border-bottom:1px solid #eee}
.ok{color:#1b7f3b;font-weight:bold}
.bad{color:#b00020;font-weight:bold}
.warn{color:#9a5b00;font-weight:bold}
.revoked{color:#777;text-decoration:line-through}
.none{color:#666}
.order{border-top:2px solid #ddd;padding-top:.4em;margin-top:.8em}
.order h3{font-size:1.05em;margin:.2em 0}
article{border:1px solid #e3e3e3;border-radius:.3em;padding:.4em .8em;margin:.6em 0}
article h4{margin:.2em 0 .4em}
details{margin:.4em 0}
summary{cursor:pointer}
pre{background:#f7f7f5;padding:.5em;white-space:pre-wrap;word-break:break-word;margin:.3em 0}
form.action{display:inline-flex;flex-wrap:wrap;gap:.4em;align-items:center;margin:.3em 1.5em .3em 0}
form.action input{padding:.2em}
.login{max-width:26em;margin:4em auto}
.login input{width:100%;padding:.3em;margin:.3em 0 .8em}
footer{color:#666;margin-top:1em;font-size:.9em}
"""


@dataclass(frozen=True, slots=True)
class Flash:
    """The outcome of the last action, shown once after its redirect."""

    kind: Literal["ok", "bad"]
    text: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything the page shows, read at ``now``; ``counts`` None: no Odoo writer configured."""

    now: datetime
    version: str
    gateways: Sequence[GatewayInfo]
    last_seq_seen: Mapping[str, int] | None
    """Highest seq this replica saw per gateway; None: no metrics, so no lag column."""
    writer: PostingStats | None
    counts: PostingCounts | None
    parked: Sequence[OrderState] = ()
    dead: Sequence[DeadLetter] = ()
    audit: Sequence[AuditEntry] = ()
    writer_off: str = "no [odoo] section"
    """Why this relay posts nothing to Odoo, when it has no writer."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks: their CSRF token, the name their forms are prefilled with, and whether they
    watch (read-only, reloading) or act."""

    csrf: str
    actor: str = ""
    watch: bool = False
    flash: Flash | None = None


_TEMPLATES = Environment(
    loader=PackageLoader("cloud_relay.admin", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    keep_trailing_newline=False,
)


def render_admin_page(snap: Snapshot, viewer: Viewer) -> str:
    """The whole admin page."""
    groups: dict[str, list[DeadLetter]] = {}
    for letter in snap.dead:
        groups.setdefault(letter.order_key, []).append(letter)
    return _render(
        "admin.html",
        _title(snap),
        snap=snap,
        viewer=viewer,
        groups=groups,
        refresh_seconds=REFRESH_SECONDS,
        state_classes=_STATE_CLASSES,
    )


def render_login(message: str | None = None, *, token_key: str = "token_file") -> str:
    """The form that trades the admin token for a session."""
    return _render(
        "login.html",
        "Log in: cloud relay admin",
        message=message,
        token_key=token_key,
        session_hours=SESSION_MAX_AGE_SECONDS // 3600,
    )


def render_notice(title: str, text: str, *, login_link: bool = False) -> str:
    """A page that only says why nothing more is shown (refused, not set up, unavailable)."""
    return _render(
        "notice.html",
        f"{title}: cloud relay admin",
        heading=title,
        text=text,
        login_link=login_link,
    )


def _render(template: str, title: str, **values: object) -> str:
    """A page from its template; every value is escaped unless the template says otherwise."""
    page = _TEMPLATES.get_template(template)
    return page.render(title=title, style=Markup(_STYLE), page_path=PAGE_PATH, **values)


def _title(snap: Snapshot) -> str:
    if snap.counts is None:
        return "Cloud relay admin"
    waiting = []
    if snap.counts.dead:
        waiting.append(_plural(snap.counts.dead, "dead letter"))
    if snap.counts.parked_orders:
        waiting.append(_plural(snap.counts.parked_orders, "parked order"))
    return f"{', '.join(waiting) or 'Nothing waiting'}: cloud relay admin"


def _event_json(letter: DeadLetter) -> str:
    shown = dead_letter_dict(letter)
    if shown["event"] is None:
        return str(shown["raw_body"])
    return json.dumps(shown["event"], indent=2, ensure_ascii=False)


def _order(order_key: str) -> str:
    return order_name(order_key) or order_key


def _summary(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "(none)"
    if len(first) > _SUMMARY_CHARS or "\n" in message.strip():
        return first[:_SUMMARY_CHARS].rstrip() + "…"
    return first


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(moment: datetime, now: datetime) -> str:
    return f"{_clock(moment)} ({_relative(moment, now)})"


def _relative(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    if abs(seconds) < 1:
        return "just now"
    return f"{_duration(seconds)} ago" if seconds > 0 else f"in {_duration(-seconds)}"


_TEMPLATES.filters.update(
    clock=_clock, when=_when, plural=_plural, summary=_summary, order=_order, event_json=_event_json
)
