"""The ``cloud-relay reconcile`` command line: its arguments only, so ``--help`` stays light."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime


def add_reconcile_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_opt: argparse.ArgumentParser
) -> None:
    """The ``reconcile`` command's arguments."""
    parser = sub.add_parser(
        "reconcile",
        parents=[config_opt],
        help="compare what the relay applied with what Odoo holds now (changes nothing)",
    )
    parser.add_argument("--json", action="store_true", help="the report as JSON")
    parser.add_argument("--order", metavar="NAME", help="only this manufacturing order")
    parser.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="only orders and places the relay touched since (ISO 8601, UTC when no offset)",
    )


def _time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)
