"""Posting keys of manufacturing orders: ``mo:<MO name>``.

Kept apart from the effects so that what only names orders (the CLI, dead letters, the admin
page) does not load the Odoo client.
"""

from __future__ import annotations


def mo_key(order: str) -> str:
    """The posting key of events on the manufacturing order named ``order``."""
    return f"mo:{order}"


def order_name(key: str) -> str | None:
    """The MO name of an ``mo:`` key, else None."""
    return key[3:] if key.startswith("mo:") else None
