"""The Odoo sandbox: an in-process stand-in for Odoo 17, 18 and 19 for tests and the demo.

It implements, for the models and methods a manufacturing connector uses and nothing more, what
a real Odoo answers (recorded sessions: ``tests/cloud_relay/odoo/sandbox/recordings/``); where
it and a real Odoo disagree, it is wrong.
"""

from __future__ import annotations

from cloud_relay.odoo.sandbox.dispatch import HttpFault, Sandbox, SandboxInfo
from cloud_relay.odoo.sandbox.faults import FaultInjector, FaultRule, FaultStats
from cloud_relay.odoo.sandbox.server import (
    SandboxHandle,
    SandboxServer,
    ServerStats,
    running_sandbox,
    serve_sandbox,
)

__all__ = [
    "FaultInjector",
    "FaultRule",
    "FaultStats",
    "HttpFault",
    "Sandbox",
    "SandboxHandle",
    "SandboxInfo",
    "SandboxServer",
    "ServerStats",
    "running_sandbox",
    "serve_sandbox",
]
