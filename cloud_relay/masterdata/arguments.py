"""The ``cloud-relay bom`` command line: its arguments only, so ``--help`` imports nothing heavy."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_bom_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], config_opt: argparse.ArgumentParser
) -> None:
    """The ``bom`` command group."""
    bom = sub.add_parser("bom", help="submit, approve, publish and roll back BOM revisions")
    actions = bom.add_subparsers(dest="bom_command", required=True, metavar="ACTION")
    submit = actions.add_parser("submit", parents=[config_opt], help="validate and submit a file")
    submit.add_argument("file", type=Path, help="JSON document or indented CSV export")
    submit.add_argument("--by", help="who submits (default: the terminal's user)")
    submit.add_argument("--json", action="store_true", help="machine-readable output")
    listing = actions.add_parser("list", parents=[config_opt], help="submissions, newest first")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    dry = actions.add_parser("diff", parents=[config_opt], help="what publishing would change")
    dry.add_argument("id", type=int, help="submission id")
    dry.add_argument("--json", action="store_true", help="machine-readable output")
    approve = actions.add_parser("approve", parents=[config_opt], help="approve a submission")
    approve.add_argument("id", type=int, help="submission id")
    approve.add_argument("--by", required=True, help="who approves (not the submitter)")
    approve.add_argument("--reason", help="why, for the audit log")
    approve.add_argument(
        "--no-publish", action="store_true", help="leave publishing to the running relay"
    )
    for name, text in (("refuse", "refuse a submission"), ("retry", "publish a parked one")):
        decide = actions.add_parser(name, parents=[config_opt], help=text)
        decide.add_argument("id", type=int, help="submission id")
        decide.add_argument("--by", required=True, help="who decides")
        decide.add_argument("--reason", required=True, help="why, for the audit log")
    rollback = actions.add_parser(
        "rollback", parents=[config_opt], help="make an earlier revision current again"
    )
    rollback.add_argument("product", help="the product's default_code")
    rollback.add_argument("--to", required=True, dest="revision", help="the revision")
    rollback.add_argument("--by", required=True, help="who decides")
    rollback.add_argument("--reason", required=True, help="why, for the audit log")
    history = actions.add_parser(
        "history", parents=[config_opt], help="revisions current over time, and their MOs"
    )
    history.add_argument("product", help="the product's default_code")
    history.add_argument("--on", help="RFC 3339 date-time: the revision current then")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    demo = actions.add_parser(
        "demo", help="submit, approve and use a revision in an Odoo sandbox of its own"
    )
    demo.add_argument(
        "--file", type=Path, default=Path("config/bom-example.csv"), help="the export to submit"
    )
    demo.add_argument("--odoo-version", type=int, choices=(17, 18, 19), default=18)
