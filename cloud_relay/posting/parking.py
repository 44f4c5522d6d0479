"""What happens to an order Odoo refuses: parked and retried with growing delays, one event at a
time, and after ``[writer] patience_seconds`` its refused event goes to the dead letters."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from cloud_relay.config import WriterConfig
from cloud_relay.errors import RejectedError
from cloud_relay.posting.effects.base import Item
from cloud_relay.posting.store import OrderState, PostingStore

log = logging.getLogger(__name__)


async def refuse(
    store: PostingStore,
    config: WriterConfig,
    key: str,
    state: OrderState,
    step: list[Item],
    exc: BaseException,
    now: datetime,
) -> bool:
    """Park the order (or dead-letter its event when patience ran out); True for a dead letter."""
    reason = str(exc) if isinstance(exc, RejectedError) else f"internal error: {exc!r}"
    since = state.parked_since or now
    patience = timedelta(seconds=config.patience_seconds)
    if len(step) == 1 and state.parked and now - since >= patience:
        item = step[0]
        dead_id = await store.dead_letter(key, item.posting.pid, reason, now)
        log.warning(
            "dead letter %d: %s event %s of %s refused since %s: %s",
            dead_id,
            item.type,
            item.event_id,
            key,
            since.isoformat(),
            reason,
        )
        return True
    if len(step) > 1 or not state.parked:
        # Find the refused event: from now on this order goes one event at a time.
        delay = 0.0 if len(step) > 1 else config.retry_initial_seconds
    else:
        growth = 2.0 ** min(state.attempts, 30)
        delay = min(config.retry_max_seconds, config.retry_initial_seconds * growth)
    parked = await store.park(key, reason, now + timedelta(seconds=delay), now)
    if parked.attempts == 1:
        log.warning("order %s parked: %s", key, reason)
    else:
        log.info("order %s still refused (attempt %d): %s", key, parked.attempts, reason)
    return False
