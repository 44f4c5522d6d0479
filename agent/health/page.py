"""The technician's page: the verdict first, then each source, the queue and the uplink, in words.

Plain HTML and CSS that reloads itself: it must open in whatever browser a plant PC has, with no
scripts and nothing fetched from elsewhere. Every figure comes from a component's ``stats()``;
the only thing worked out here is the time to drain, from the queue's pending count and the
uploader's recent acknowledgement rate.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from html import escape
from typing import Any

from agent.health.status import CLOCK_SKEW_WARN_SECONDS, Health, as_dict
from agent.sources import registry
from agent.sources.rejects import RECENT_SECONDS
from runtime.durations import human_duration as _duration

#: Seconds between the page's own reloads.
REFRESH_SECONDS = 5

_COLOURS = {"green": "#1b7f3b", "amber": "#9a5b00", "red": "#b00020"}
_NOT_SOURCES = ("queue", "uploader")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:0;color:#1d1d1d;background:#f4f4f2}
main{max-width:64em;margin:0 auto;padding:1em}
.verdict{color:#fff;padding:.8em 1.2em;border-radius:.3em}
.verdict h1{margin:0;font-size:2em;letter-spacing:.05em}
.verdict ul{margin:.3em 0 0;padding-left:1.2em;font-size:1.15em}
.identity{color:#444;margin:.8em 0}
.cards{display:flex;flex-wrap:wrap;gap:1em}
section{background:#fff;border:1px solid #ddd;border-radius:.3em;padding:.6em 1em;flex:1 1 20em}
section h2{font-size:1.1em;margin:.2em 0 .5em}
table{border-collapse:collapse;width:100%}
th{text-align:left;font-weight:normal;color:#555;padding:.2em 1em .2em 0;vertical-align:top;
white-space:nowrap}
td{padding:.2em 0}
.bad{color:#b00020;font-weight:bold}
.warn{color:#9a5b00;font-weight:bold}
meter{width:100%}
details{margin-top:1em}
footer{color:#666;margin-top:1em;font-size:.9em}
"""


def render_page(
    health: Health,
    stats: Mapping[str, Any],
    identity: Mapping[str, str],
    now: datetime,
    disabled: Mapping[str, str] | None = None,
) -> str:
    """The whole page for one snapshot of every component's stats, taken at ``now``;
    ``disabled`` are the sources configured but not run, with the reason."""
    colour = _COLOURS[health.status]
    reasons = "".join(f"<li>{escape(reason)}</li>" for reason in health.reasons)
    cards = [
        _source(name, source, now) for name, source in stats.items() if name not in _NOT_SOURCES
    ]
    for name, why in (disabled or {}).items():
        found = registry.find(name)
        kind = found.title if found else f"{name} source"
        cards.append(_card(f"source-{name}", escape(kind), [("Not running", _warn(escape(why)))]))
    if "queue" in stats:
        cards.append(_queue(stats["queue"]))
    if "uploader" in stats:
        cards.append(_uplink(stats["uploader"], stats.get("queue"), now))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<meta http-equiv='refresh' content='{REFRESH_SECONDS}'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{health.status.upper()}: edge agent {escape(identity.get('gateway_id', ''))}"
        f"</title><style>{_STYLE}</style></head><body><main>"
        f"<div class='verdict' id='verdict' style='background:{colour}'>"
        f"<h1>{health.status.upper()}</h1><ul>{reasons}</ul></div>"
        f"<p class='identity' id='identity'>{_identity(identity, now)}</p>"
        f"<div class='cards'>{''.join(cards)}</div>"
        f"{_all_figures(stats)}"
        "<footer>Also as JSON at <a href='healthz'>/healthz</a> and for Prometheus at "
        "<a href='metrics'>/metrics</a>.</footer></main></body></html>"
    )


def _identity(identity: Mapping[str, str], now: datetime) -> str:
    labels = {"gateway_id": "Gateway", "key_id": "key id", "version": "version"}
    parts = [f"{escape(labels.get(k, k))} <b>{escape(v)}</b>" for k, v in identity.items()]
    parts.append(f"as of {_clock(now)}, reloads every {REFRESH_SECONDS} s")
    return " · ".join(parts)


def _source(name: str, stats: Any, now: datetime) -> str:
    found = registry.find(name)
    kind, address_field = (found.title, found.address_field) if found else (f"{name} source", "")
    address = _get(stats, address_field) if address_field else None
    title = f"{kind} {address}" if address else kind
    connected, since = _get(stats, "connected", True), _get(stats, "since")
    if connected:
        link = f"connected since {_when(since, now)}" if since else "connected"
    elif since:
        link = _bad(f"not connected since {_when(since, now)}")
    else:
        link = _bad("not connected yet")
    rows = [("Connection", link)]
    if _get(stats, "alarm"):
        rows.append(("Alarm", _bad(escape(_get(stats, "alarm")))))
    if _get(stats, "warning"):
        rows.append(("Warning", _warn(escape(_get(stats, "warning")))))
    if _get(stats, "duplicate_client"):
        rows.append(("Client id", _bad(escape(_get(stats, "duplicate_client")))))
    if not connected and _get(stats, "last_error"):
        rows.append(("Why", _bad(escape(_get(stats, "last_error")))))
    last_value = _get(stats, "last_value_at") or _get(stats, "last_message_at")
    rows.append(("Last value", _when(last_value, now) if last_value else "none yet"))
    rejected = _get(stats, "rejected", 0)
    last_reject = _get(stats, "last_reject")
    if rejected:
        recent, last_at = _get(stats, "rejected_recently", 0), _get(stats, "last_reject_at")
        count = (
            f"{rejected} ({recent} in the last {RECENT_SECONDS / 60:.0f} min)"
            if recent
            else f"{rejected}"
        )
        when = f" ({_ago(last_at, now)})" if last_at else ""
        why = f"; the last{when}: {escape(last_reject)}" if last_reject else ""
        text = f"{count}{why} (<code>edge-agent rejects</code> lists them)"
        rows.append(("Rejected", _warn(text) if recent else text))
    else:
        rows.append(("Rejected", "none"))
    if _get(stats, "paused"):
        rows.append(("Reading", _bad("paused while the queue is full")))
    return _card(f"source-{name}", escape(title), rows)


def _queue(stats: Any) -> str:
    pending = _get(stats, "pending", 0)
    first, last = _get(stats, "first_seq"), _get(stats, "last_seq")
    span = f" (seq {first}..{last})" if pending and first is not None else ""
    rows = [("Pending events", f"{pending}{span}")]
    age = _get(stats, "oldest_age_seconds")
    oldest = "none waiting" if age is None else f"waiting {_duration(age)}"
    rows.append(("Oldest event", oldest))
    used, limit = _get(stats, "bytes"), _get(stats, "max_bytes")
    if used is not None and limit:
        share = used / limit
        rows.append(
            (
                "Space used",
                f"{_size(used)} of {_size(limit)} ({share:.0%})"
                f"<br><meter min='0' max='1' low='0.8' high='0.95' optimum='0' "
                f"value='{min(share, 1.0):.4f}'>{share:.0%}</meter>",
            )
        )
    if _get(stats, "full"):
        why = _get(stats, "last_error") or "the byte limit is reached"
        overflow = _bad(f"FULL ({escape(why)}): sources are paused")
    else:
        overflow = "not full"
        if _get(stats, "last_error"):
            overflow += "; " + _warn(escape(_get(stats, "last_error")))
    if _get(stats, "shed"):
        overflow += f"; {_get(stats, 'shed')} telemetry events dropped to make room"
    rows.append(("Overflow", overflow))
    for moved in _get(stats, "moved_aside", ()) or ():
        rows.append(("Moved aside", _bad(escape(moved))))
    return _card("queue", "Queue", rows)


def _uplink(stats: Any, queue: Any, now: datetime) -> str:
    rows = []
    alarm = _get(stats, "alarm")
    if alarm:
        rows.append(("Alarm", _bad(escape(alarm))))
    link_up = _get(stats, "link_up")
    success = _get(stats, "last_success_at")
    error, error_at = _get(stats, "last_error"), _get(stats, "last_error_at")
    check, check_words = _get(stats, "link_check"), _get(stats, "link_check_words")
    check_at = _get(stats, "link_check_at")
    if link_up:
        rows.append(("Link", "up: the relay accepts uploads"))
    elif link_up is not None and error:
        rows.append(("Link", _bad("down")))
    elif check == "ok":
        rows.append(("Link", "the relay answers; nothing uploaded yet"))
    elif check is not None:
        rows.append(("Link", _bad("down")))
    elif link_up is not None:
        rows.append(("Link", "no upload yet"))
    if check_words:
        at = f" ({_ago(check_at, now)})" if check_at else ""
        text = escape(check_words) + at
        rows.append(("Relay check", text if check == "ok" else _bad(text)))
    rows.append(("Last success", _when(success, now) if success else "none since start"))
    if error:
        at = f" ({_ago(error_at, now)})" if error_at else ""
        text = escape(error) + at
        rows.append(("Last error", text if link_up else _bad(text)))
    else:
        rows.append(("Last error", "none"))
    rows.append(
        (
            "Acknowledged",
            f"events through seq {_get(stats, 'acked_seq', 0)} (deleted here)",
        )
    )
    relay_acked = _get(stats, "relay_acked_seq")
    rows.append(
        (
            "Relay has confirmed",
            f"events through seq {relay_acked}" if relay_acked is not None else "no answer yet",
        )
    )
    rows.append(("Time to drain", _drain(_get(queue, "pending", 0), stats, link_up)))
    rows.append(("Clock vs relay", _skew(_get(stats, "relay_clock_skew_seconds"))))
    backoff = _get(stats, "backoff_seconds")
    if backoff:
        rows.append(("Retrying", f"after a pause of {_duration(backoff)}"))
    return _card("uplink", "Uplink to the relay", rows)


def _drain(pending: int, uploader: Any, link_up: bool | None) -> str:
    if not pending:
        return "nothing to send"
    if link_up is False:
        return _warn("none while the link is down")
    rate = _get(uploader, "ack_rate_per_second")
    if not rate:
        return _warn("unknown: no acknowledgements lately")
    seconds = pending / rate
    estimate = _duration(seconds) if seconds < 1 else f"about {_duration(seconds)}"
    return f"{estimate} at {rate:.3g} events/s"


def _skew(seconds: float | None) -> str:
    if seconds is None:
        return "unknown until the relay answers"
    if abs(seconds) < 1.5:
        return "in step (within about a second)"
    text = f"the relay's clock is {_duration(abs(seconds))} {'ahead' if seconds > 0 else 'behind'}"
    return _warn(text) if abs(seconds) >= CLOCK_SKEW_WARN_SECONDS else text


def _all_figures(stats: Mapping[str, Any]) -> str:
    """Every raw figure, folded away: for whoever needs more than the summary."""
    tables = []
    for name, component in stats.items():
        fields = as_dict(component)
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{escape(v if isinstance(v, str) else json.dumps(v))}"
            "</td></tr>"
            for k, v in fields.items()
        )
        tables.append(f"<h3>{escape(name)}</h3><table>{rows}</table>")
    return f"<details><summary>All figures</summary>{''.join(tables)}</details>"


def _card(ident: str, title: str, rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{escape(label)}</th><td>{value}</td></tr>" for label, value in rows)
    return f"<section id='{escape(ident)}'><h2>{title}</h2><table>{body}</table></section>"


def _get(stats: Any, name: str, default: Any = None) -> Any:
    if stats is None or not dataclasses.is_dataclass(stats):
        return default
    return getattr(stats, name, default)


def _bad(html_text: str) -> str:
    return f"<span class='bad'>{html_text}</span>"


def _warn(html_text: str) -> str:
    return f"<span class='warn'>{html_text}</span>"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _when(moment: datetime, now: datetime) -> str:
    return f"{_clock(moment)} ({_ago(moment, now)})"


def _ago(moment: datetime, now: datetime) -> str:
    seconds = (now - moment).total_seconds()
    return "just now" if seconds < 1 else f"{_duration(seconds)} ago"


def _size(count: int) -> str:
    if count < 1024:
        return f"{count} bytes"
    value, unit = count / 1024, "KiB"
    for bigger in ("MiB", "GiB"):
        if value < 1024:
            break
        value, unit = value / 1024, bigger
    return f"{value:.1f} {unit}"
