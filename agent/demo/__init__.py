"""``edge-agent demo``: a simulated line, the agent, a relay and Odoo, end to end on loopback.

By default the relay posts into an Odoo sandbox it starts; the ``--odoo-*`` options post into a
real Odoo instead.
"""

from __future__ import annotations

import argparse
import importlib.util

from agent.errors import AgentError

#: What the demo runs besides the plain install: OPC UA and MQTT (agent), the relay's API.
DEMO_MODULES = ("asyncua", "paho", "fastapi")

__all__ = ["add_arguments", "run_demo"]


def run_demo(args: argparse.Namespace) -> int:
    """Run the demo (imported here, so ``edge-agent --help`` loads no protocol stack)."""
    missing = [name for name in DEMO_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise AgentError(
            f"the demo runs the agent and the relay, and this installation lacks "
            f"{', '.join(missing)}: pip install 'plant-link[all]'"
        )
    from agent.demo.runner import run_demo as run

    return run(args)


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
    parser.add_argument(
        "--odoo-version",
        type=int,
        choices=(17, 18, 19),
        default=18,
        help="Odoo version the sandbox answers as (default 18)",
    )
    real = parser.add_argument_group(
        "a real Odoo instead of the sandbox (all four or none; the account sets up the demo's "
        "products, BOM and orders, and posts)"
    )
    real.add_argument("--odoo-url", metavar="URL", help="base URL, e.g. http://127.0.0.1:8069")
    real.add_argument("--odoo-db", metavar="NAME", help="database")
    real.add_argument("--odoo-login", metavar="LOGIN", help="login of the account")
    real.add_argument(
        "--odoo-api-key-file", metavar="PATH", help="file holding the account's API key"
    )
