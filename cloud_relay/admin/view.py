"""The admin page's HTML: what the relay holds and what waits on a person, in words.

Plain HTML and CSS, no scripts and nothing fetched from elsewhere, like the agent's health page.
Everything shown comes from one :class:`Snapshot`; the only figure worked out here is a
gateway's lag, from the highest seq this replica saw and the ack point in the store.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Literal

from cloud_relay.admin.session import SESSION_MAX_AGE_SECONDS
from cloud_relay.deadletters.service import dead_letter_dict
from cloud_relay.inbox.store import GatewayInfo, GatewayKey
from cloud_relay.posting.routing import order_name
from cloud_relay.posting.store import AuditEntry, DeadLetter, OrderState, PostingCounts

if TYPE_CHECKING:
    from cloud_relay.posting.stats import WriterStats

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
    writer: WriterStats | None
    counts: PostingCounts | None
    parked: Sequence[OrderState] = ()
    dead: Sequence[DeadLetter] = ()
    audit: Sequence[AuditEntry] = ()


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who looks: their CSRF token, the name their forms are prefilled with, and whether they
    watch (read-only, reloading) or act."""

    csrf: str
    actor: str = ""
    watch: bool = False
    flash: Flash | None = None


def render_admin_page(snap: Snapshot, viewer: Viewer) -> str:
    """The whole admin page."""
    refresh = f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>" if viewer.watch else ""
    sections = [_status(snap), _gateways(snap)]
    if snap.counts is not None:
        sections += [_parked(snap), _dead_letters(snap, viewer), _audit(snap)]
    return _document(
        _title(snap),
        f"{_header(snap, viewer)}{_flash(viewer.flash)}{''.join(sections)}"
        "<footer>The same as JSON behind the bearer token: <code>/v1/gateways</code>, "
        "<code>/v1/deadletters</code>, <code>/v1/orders</code>, <code>/v1/audit</code>; "
        "figures for Prometheus at <code>/metrics</code>.</footer>",
        head=refresh,
    )


def render_login(message: str | None = None) -> str:
    """The form that trades the admin token for a session."""
    note = f"<p class='flash bad' id='flash' role='alert'>{escape(message)}</p>" if message else ""
    return _document(
        "Log in: cloud relay admin",
        f"<section class='login'><h1>Cloud relay admin</h1>{note}"
        f"<form method='post' action='{PAGE_PATH}/login'>"
        "<label for='token'>Admin token</label>"
        "<input type='password' id='token' name='token' required autocomplete='current-password'"
        " autofocus><button type='submit'>Log in</button></form>"
        "<p class='none'>The token of <code>[admin] token_file</code>; a session lasts "
        f"{SESSION_MAX_AGE_SECONDS // 3600} hours.</p></section>",
    )


def render_notice(title: str, text: str, *, login_link: bool = False) -> str:
    """A page that only says why nothing more is shown (refused, not set up, unavailable)."""
    link = f" <a href='{PAGE_PATH}/login'>Log in</a>." if login_link else ""
    return _document(
        f"{title}: cloud relay admin",
        f"<section class='login'><h1>{escape(title)}</h1><p id='notice'>{escape(text)}{link}</p>"
        "</section>",
    )


def _document(title: str, body: str, *, head: str = "") -> str:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"{head}<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _title(snap: Snapshot) -> str:
    if snap.counts is None:
        return "Cloud relay admin"
    waiting = []
    if snap.counts.dead:
        waiting.append(_plural(snap.counts.dead, "dead letter"))
    if snap.counts.parked_orders:
        waiting.append(_plural(snap.counts.parked_orders, "parked order"))
    return f"{', '.join(waiting) or 'Nothing waiting'}: cloud relay admin"


def _header(snap: Snapshot, viewer: Viewer) -> str:
    if viewer.watch:
        mode = (
            f"reloads every {REFRESH_SECONDS} s · <a href='{PAGE_PATH}'>Stop reloading, to act</a>"
        )
    else:
        mode = (
            f"<a href='{PAGE_PATH}' id='refresh'>Refresh</a> · "
            f"<a href='{PAGE_PATH}?watch=1'>Watch (reloads itself, no actions)</a>"
        )
    logout = (
        f"<form method='post' class='logout' action='{PAGE_PATH}/logout'>{_csrf(viewer)}"
        "<button type='submit'>Log out</button></form>"
    )
    return (
        f"<header>{logout}<h1>Cloud relay admin</h1>"
        f"<p class='identity' id='identity'>version <b>{escape(snap.version)}</b> · "
        f"as of {_clock(snap.now)} · {mode}</p></header>"
    )


def _flash(flash: Flash | None) -> str:
    if flash is None:
        return ""
    return f"<p class='flash {flash.kind}' id='flash' role='status'>{escape(flash.text)}</p>"


def _status(snap: Snapshot) -> str:
    rows: list[tuple[str, str]] = []
    if snap.counts is None:
        rows.append(("Odoo writer", _span("warn", "not configured: nothing goes to Odoo")))
    elif snap.writer is None:
        rows.append(("Odoo writer", _span("warn", "not running in this process")))
    else:
        state = snap.writer.state
        rows.append(("Odoo writer", _span(_STATE_CLASSES.get(state, ""), state)))
        if snap.writer.last_error:
            rows.append(("Last error", escape(snap.writer.last_error)))
        if snap.writer.odoo_version:
            rows.append(("Odoo version", escape(snap.writer.odoo_version)))
        rows.append(("Events posted", f"{snap.writer.events_posted} since start"))
        if not snap.writer.healthy:
            rows.append(("Progress", _span("bad", "none lately: the watchdog is withheld")))
        if snap.writer.restarts:
            crash = f" (last: {escape(snap.writer.last_crash)})" if snap.writer.last_crash else ""
            rows.append(("Writer restarts", _span("bad", f"{snap.writer.restarts}{crash}")))
    if snap.counts is not None:
        counts = snap.counts
        rows.append(("Pending events", str(counts.pending)))
        parked = f"<a href='#parked'>{counts.parked_orders}</a>"
        rows.append(("Parked orders", _span("warn", parked) if counts.parked_orders else "0"))
        dead = f"<a href='#deadletters'>{counts.dead}</a>"
        rows.append(("Dead letters", _span("bad", dead) if counts.dead else "0"))
    rows.append(("Gateways", str(len(snap.gateways))))
    body = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<section id='status'><h2>Status</h2><table>{body}</table></section>"


def _gateways(snap: Snapshot) -> str:
    lag = snap.last_seq_seen is not None
    head = ["Gateway", "Last seen", "Acked seq", *(["Lag"] if lag else []), "Keys"]
    rows = []
    for gateway in snap.gateways:
        seen = "never" if gateway.last_seen_at is None else _when(gateway.last_seen_at, snap.now)
        cells = [f"<b>{escape(gateway.gateway_id)}</b>", seen, str(gateway.acked_seq)]
        if snap.last_seq_seen is not None:
            cells.append(_lag(snap.last_seq_seen.get(gateway.gateway_id), gateway.acked_seq))
        cells.append("<br>".join(_key(key) for key in gateway.keys) or "none")
        rows.append(cells)
    note = (
        "<p class='none'>Lag: events this replica saw in a batch but the store has not "
        "acknowledged.</p>"
        if lag
        else ""
    )
    return _list_section("gateways", "Gateways", head, rows, "No gateway registered yet.", note)


def _lag(last_seen: int | None, acked: int) -> str:
    if last_seen is None:
        return "<span class='none'>not seen here</span>"
    behind = max(0, last_seen - acked)
    return _span("warn", str(behind)) if behind else "0"


def _key(key: GatewayKey) -> str:
    added = f"added {_clock(key.added_at)}"
    if key.revoked_at is None:
        return f"<code>{escape(key.key_id)}</code> <span class='none'>{added}</span>"
    return (
        f"<code class='revoked'>{escape(key.key_id)}</code> "
        f"<span class='bad'>revoked {_clock(key.revoked_at)}</span>"
    )


def _parked(snap: Snapshot) -> str:
    head = ["Order", "Reason", "Parked since", "Attempts", "Next attempt", "Pending events"]
    rows = [
        [
            f"<b>{escape(_order(state.order_key))}</b>",
            escape(state.park_reason or ""),
            _when(state.parked_since, snap.now) if state.parked_since else "",
            str(state.attempts),
            _next_attempt(state.next_attempt_at, snap.now),
            str(state.pending),
        ]
        for state in snap.parked
    ]
    return _list_section("parked", "Parked orders", head, rows, "No order is parked.")


def _next_attempt(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    return f"{_clock(moment)} (due)" if moment <= now else _when(moment, now)


def _dead_letters(snap: Snapshot, viewer: Viewer) -> str:
    assert snap.counts is not None
    groups: dict[str, list[DeadLetter]] = {}
    for letter in snap.dead:
        groups.setdefault(letter.order_key, []).append(letter)
    shown = len(snap.dead)
    more = (
        f"<p class='warn'>Showing the oldest {shown} of {snap.counts.dead}; act on these, then "
        "refresh.</p>"
        if snap.counts.dead > shown
        else ""
    )
    if not groups:
        body = "<p class='none'>No dead letter waits for a decision.</p>"
    else:
        body = more + "".join(
            _order_group(key, letters, snap.now, viewer) for key, letters in groups.items()
        )
    return f"<section id='deadletters'><h2>Dead letters</h2>{body}</section>"


def _order_group(key: str, letters: list[DeadLetter], now: datetime, viewer: Viewer) -> str:
    name = _order(key)
    bulk = ""
    if len(letters) > 1 and not viewer.watch:
        bulk = _form(
            f"{PAGE_PATH}/orders/replay",
            viewer,
            f"Replay all {_plural(len(letters), 'dead letter')} of {name}",
            f"<input type='hidden' name='order' value='{escape(key)}'>"
            f"{_actor_input(viewer)}{_reason_input(required=False)}",
        )
    articles = "".join(_dead_letter(letter, now, viewer) for letter in letters)
    return (
        f"<div class='order' data-order='{escape(key)}'>"
        f"<h3>Order {escape(name)} <span class='none'>({_plural(len(letters), 'dead letter')})"
        f"</span></h3>{bulk}{articles}</div>"
    )


def _dead_letter(letter: DeadLetter, now: datetime, viewer: Viewer) -> str:
    shown = dead_letter_dict(letter)
    rows = [
        ("Order", escape(_order(letter.order_key))),
        ("Event type", escape(letter.type)),
        ("Event id", f"<code>{escape(letter.event_id)}</code>"),
        ("From", f"{escape(letter.gateway_id)}, seq {letter.seq}"),
        ("Dead since", _when(letter.dead_at, now)),
        ("Failing since", _when(letter.failed_since, now)),
        ("Attempts", str(letter.attempts)),
    ]
    table = "".join(f"<tr><th>{label}</th><td>{value}</td></tr>" for label, value in rows)
    event = (
        json.dumps(shown["event"], indent=2, ensure_ascii=False)
        if shown["event"] is not None
        else str(shown["raw_body"])
    )
    actions = ""
    if not viewer.watch:
        base = f"{PAGE_PATH}/deadletters/{letter.id}"
        actions = (
            "<div class='actions'>"
            + _form(
                f"{base}/replay",
                viewer,
                "Replay",
                f"{_actor_input(viewer)}{_reason_input(required=False)}",
            )
            + _form(
                f"{base}/discard",
                viewer,
                "Discard",
                f"{_actor_input(viewer)}{_reason_input(required=True)}",
            )
            + "</div>"
        )
    return (
        f"<article class='deadletter' id='dl-{letter.id}'>"
        f"<h4>Dead letter {letter.id}</h4><table>{table}</table>"
        f"<details class='odoo'><summary>Odoo's message: {escape(_summary(letter.error))}"
        f"</summary><pre>{escape(letter.error)}</pre></details>"
        f"<details class='event'><summary>Event JSON</summary><pre>{escape(event)}</pre>"
        f"</details>{actions}</article>"
    )


def _audit(snap: Snapshot) -> str:
    head = ["When", "Who", "Action", "Dead letter", "Order", "Event", "Reason"]
    rows = [
        [
            _clock(entry.at),
            escape(entry.actor),
            f"<b>{escape(entry.action)}</b>",
            str(entry.dead_letter_id),
            escape(_order(entry.order_key)),
            f"<code>{escape(entry.event_id)}</code>",
            escape(entry.reason or ""),
        ]
        for entry in snap.audit
    ]
    return _list_section(
        "audit", "Audit log (newest first)", head, rows, "No replay or discard yet."
    )


def _list_section(
    ident: str, title: str, head: list[str], rows: list[list[str]], empty: str, note: str = ""
) -> str:
    if not rows:
        return f"<section id='{ident}'><h2>{title}</h2><p class='none'>{empty}</p></section>"
    header = "".join(f"<th>{escape(cell)}</th>" for cell in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (
        f"<section id='{ident}'><h2>{title}</h2><table class='list'><thead><tr>{header}</tr>"
        f"</thead><tbody>{body}</tbody></table>{note}</section>"
    )


def _form(action: str, viewer: Viewer, button: str, fields: str) -> str:
    return (
        f"<form method='post' class='action' action='{escape(action)}'>{_csrf(viewer)}{fields}"
        f"<button type='submit'>{escape(button)}</button></form>"
    )


def _csrf(viewer: Viewer) -> str:
    return f"<input type='hidden' name='csrf' value='{escape(viewer.csrf)}'>"


def _actor_input(viewer: Viewer) -> str:
    return (
        "<label>Your name <input name='actor' required maxlength='200' size='12' "
        f"value='{escape(viewer.actor)}'></label>"
    )


def _reason_input(*, required: bool) -> str:
    if required:
        return "<label>Reason <input name='reason' required maxlength='2000' size='24'></label>"
    return (
        "<label>Reason <input name='reason' maxlength='2000' size='24' "
        "placeholder='optional'></label>"
    )


def _order(order_key: str) -> str:
    return order_name(order_key) or order_key


def _summary(message: str) -> str:
    first = message.strip().splitlines()[0] if message.strip() else "(none)"
    if len(first) > _SUMMARY_CHARS or "\n" in message.strip():
        return first[:_SUMMARY_CHARS].rstrip() + "…"
    return first


def _span(cls: str, html_text: str) -> str:
    return f"<span class='{cls}'>{html_text}</span>" if cls else html_text


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


def _duration(seconds: float) -> str:
    """A span as a person says it: ``4 s``, ``3 min 2 s``, ``5 h 12 min``, ``2 d 3 h``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
