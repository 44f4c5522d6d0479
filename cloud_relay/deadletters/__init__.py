"""Dead letters: what a person does with events Odoo would not take (list, replay, discard).

The CLI and the admin API both act through :mod:`cloud_relay.deadletters.service`, so every
replay and discard is checked and audited the same way whichever door it came through.
"""

from cloud_relay.deadletters.service import (
    DeadLetterError,
    DeadLetterNotDead,
    DeadLetterNotFound,
    InvalidRequest,
    Replayed,
    ReplayResult,
    Skipped,
    audit_dict,
    dead_letter_dict,
    discard,
    list_dead,
    optional_text,
    order_keys,
    order_state_dict,
    replay,
    replay_result_dict,
    required_text,
)

__all__ = [
    "DeadLetterError",
    "DeadLetterNotDead",
    "DeadLetterNotFound",
    "InvalidRequest",
    "ReplayResult",
    "Replayed",
    "Skipped",
    "audit_dict",
    "dead_letter_dict",
    "discard",
    "list_dead",
    "optional_text",
    "order_keys",
    "order_state_dict",
    "replay",
    "replay_result_dict",
    "required_text",
]
