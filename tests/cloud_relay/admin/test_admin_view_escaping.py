"""The admin page's templates escape everything they are given: a gateway id, Odoo's message,
a park reason or a person's name cannot inject markup."""

from __future__ import annotations

from datetime import UTC, datetime

from cloud_relay.admin.view import Flash, Snapshot, Viewer, render_admin_page, render_notice
from cloud_relay.inbox.store import GatewayInfo
from cloud_relay.posting.stats import PostingStats
from cloud_relay.posting.store import OrderState, PostingCounts

NOW = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
HOSTILE = "<script>alert('x')</script>"


def test_hostile_texts_are_escaped_everywhere() -> None:
    writer = PostingStats(
        "odoo refuses", HOSTILE, 0, 0, 0, 0, 0, 0, HOSTILE, 0, 0, 1, restarts=1, last_crash=HOSTILE
    )
    parked = OrderState(f"mo:{HOSTILE}", {}, None, True, HOSTILE, NOW, 1, NOW, 1, NOW)
    snap = Snapshot(
        NOW,
        "1.0",
        [GatewayInfo(HOSTILE, 3, NOW, ())],
        {HOSTILE: 4},
        writer,
        PostingCounts(1, 0, 0, 1),
        parked=[parked],
    )
    page = render_admin_page(snap, Viewer(csrf=HOSTILE, actor=HOSTILE, flash=Flash("bad", HOSTILE)))
    assert "<script>" not in page
    assert page.count("&lt;script&gt;") >= 7
    assert "<b>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</b>" in page
    notice = render_notice(HOSTILE, HOSTILE, login_link=True)
    assert "<script>" not in notice and "<a href='/admin/login'>Log in</a>." in notice
