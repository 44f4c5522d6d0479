"""``edge-agent demo``: a simulated line, the agent and a relay, end to end on loopback."""

from __future__ import annotations

import argparse

from agent.demo.runner import run_demo

__all__ = ["add_arguments", "run_demo"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the demo command."""
    parser.add_argument(
        "--duration", type=float, default=40.0, help="seconds the line produces (default 40)"
    )
    parser.add_argument(
        "--outage-seconds",
        type=float,
        default=10.0,
        help="WAN outage simulated half-way (default 10; 0 for none)",
    )
    parser.add_argument(
        "--health-port",
        type=int,
        default=0,
        help="port of the agent's health page (default: a free one)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the demo's working directory (queue, inbox, logs)"
    )
