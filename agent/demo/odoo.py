"""The Odoo end of the demo: the sandbox or a real Odoo, its master data, the relay's writer.

The agent never imports the relay: the sandbox, the master data set-up and the report run as
``cloud_relay`` child processes, and the writer is watched through the relay's ``/metrics`` and
admin API, as an operator would.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from agent.errors import AgentError, ConfigError

SANDBOX_START_SECONDS = 30.0
#: MO names in the sandbox, as a fresh Odoo numbers them.
SANDBOX_PREFIX = "WH/MO/"
ODOO_OPTIONS = ("odoo_url", "odoo_db", "odoo_login", "odoo_api_key_file")


class DemoError(AgentError):
    """The demo cannot go on; the message says why (Odoo's own words where it refused)."""


@dataclass(frozen=True)
class OdooTarget:
    """The Odoo the demo posts into: who sets it up, who posts, and how its MOs are named."""

    url: str
    database: str
    admin_login: str
    admin_key_file: Path
    connector_login: str
    connector_key_file: Path
    prefix: str
    label: str


@dataclass(frozen=True)
class WriterFigures:
    """The relay's Odoo writer as ``/metrics`` shows it."""

    posted: int
    dead: int
    pending: int

    def text(self) -> str:
        return f"odoo posted {self.posted:5d}, dead {self.dead}"


StartChild = Callable[[str, list[str]], subprocess.Popen[bytes]]


def real_target(args: argparse.Namespace) -> OdooTarget | None:
    """The real Odoo named by ``--odoo-*`` (all four or none); None for the sandbox."""
    given = [name for name in ODOO_OPTIONS if getattr(args, name, None)]
    if not given:
        return None
    if len(given) != len(ODOO_OPTIONS):
        missing = ", ".join("--" + n.replace("_", "-") for n in ODOO_OPTIONS if n not in given)
        raise ConfigError(f"the --odoo-* options go together: {missing} missing")
    key_file = Path(args.odoo_api_key_file).resolve()
    if not key_file.is_file():
        raise ConfigError(f"--odoo-api-key-file: {key_file} is not a file")
    # A prefix of its own per run: the line's orders never collide with earlier runs or with
    # the MOs already in that database.
    prefix = f"LINE1-{datetime.now(UTC):%y%m%d%H%M%S}/"
    return OdooTarget(
        args.odoo_url.rstrip("/"),
        args.odoo_db,
        args.odoo_login,
        key_file,
        args.odoo_login,
        key_file,
        prefix,
        f"Odoo at {args.odoo_url}, database {args.odoo_db}",
    )


async def start_sandbox(start: StartChild, workdir: Path, port: int, version: int) -> OdooTarget:
    """Start ``cloud_relay sandbox`` as a child and keep its two accounts' keys in 0600 files."""
    proc = start(
        "sandbox",
        [
            sys.executable,
            "-m",
            "cloud_relay",
            "sandbox",
            "--listen",
            f"127.0.0.1:{port}",
            "--odoo-version",
            str(version),
            "--json",
        ],
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(
            asyncio.to_thread(proc.stdout.readline), SANDBOX_START_SECONDS
        )
        info = json.loads(line)
    except (TimeoutError, ValueError) as exc:
        raise DemoError(f"the Odoo sandbox did not start (see {workdir / 'sandbox.log'})") from exc
    admin_key = _secret_file(workdir / "odoo-admin.key", info["admin_api_key"])
    connector_key = _secret_file(workdir / "odoo-connector.key", info["api_key"])
    return OdooTarget(
        info["url"],
        info["database"],
        info["admin_login"],
        admin_key,
        info["login"],
        connector_key,
        SANDBOX_PREFIX,
        f"Odoo {info['odoo_version']} sandbox at {info['url']}",
    )


def _secret_file(path: Path, secret: str) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return path


def relay_odoo_toml(target: OdooTarget) -> str:
    """The relay's ``[odoo]`` (the least-privileged account) and a patient, quick ``[writer]``
    (values as JSON strings, which TOML reads as its basic strings)."""
    return f"""
[odoo]
url = {json.dumps(target.url)}
database = {json.dumps(target.database)}
login = {json.dumps(target.connector_login)}
api_key_file = {json.dumps(str(target.connector_key_file))}

[writer]
patience_seconds = 86400.0
retry_initial_seconds = 1.0
retry_max_seconds = 5.0
poll_seconds = 0.5
"""


async def _demo_data(target: OdooTarget, *args: str) -> dict[str, Any]:
    """Run ``cloud_relay.odoo.demo_data`` as the set-up account; its JSON answer."""
    argv = [
        sys.executable,
        "-m",
        "cloud_relay.odoo.demo_data",
        args[0],
        "--url",
        target.url,
        "--database",
        target.database,
        "--login",
        target.admin_login,
        "--api-key-file",
        str(target.admin_key_file),
        "--json",
        *args[1:],
    ]
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        reason = done.stderr.strip().removeprefix("demo_data: ") or f"exit {done.returncode}"
        raise DemoError(f"{target.label} refused the demo ({args[0]}): {reason}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def set_up_orders(
    target: OdooTarget,
    count: int,
    *,
    order_qty: int,
    finished: str,
    component: str,
    component_per_unit: int,
    workcenter: str,
) -> list[str]:
    """Products, stock, work centre, BOM and ``count`` confirmed MOs; the MO names."""
    answer = await _demo_data(
        target,
        "setup",
        "--prefix",
        target.prefix,
        "--orders",
        str(count),
        "--order-qty",
        str(order_qty),
        "--finished",
        finished,
        "--component",
        component,
        "--component-per-unit",
        str(component_per_unit),
        "--workcenter",
        workcenter,
    )
    return [str(order["name"]) for order in answer["orders"]]


async def odoo_report(
    target: OdooTarget, names: list[str], component: str
) -> dict[str, dict[str, Any]]:
    """Per MO name: what Odoo holds (produced, scrapped, consumed, state)."""
    if not names:
        return {}
    answer = await _demo_data(target, "report", "--component", component, "--orders", *names)
    return {str(order["name"]): order for order in answer["orders"]}


async def writer_figures(client: httpx.AsyncClient, relay_port: int) -> WriterFigures | None:
    """Posted, dead and pending from the relay's ``/metrics``; None while it cannot be read."""
    values: dict[str, float] = {}
    with contextlib.suppress(httpx.HTTPError):
        text = (await client.get(f"http://127.0.0.1:{relay_port}/metrics")).text
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name.startswith("cloud_relay_writer_"):
                with contextlib.suppress(ValueError):
                    values[name] = float(value)
    try:
        return WriterFigures(
            int(values["cloud_relay_writer_events_posted_total"]),
            int(values["cloud_relay_writer_dead_letters"]),
            int(values["cloud_relay_writer_pending"]),
        )
    except KeyError:
        return None


async def parked_orders(
    client: httpx.AsyncClient, relay_port: int, admin: dict[str, str]
) -> list[str]:
    """``order: reason`` of each order the writer has parked (Odoo refuses it for now)."""
    with contextlib.suppress(httpx.HTTPError, ValueError, KeyError):
        resp = await client.get(
            f"http://127.0.0.1:{relay_port}/v1/orders", params={"parked": "true"}, headers=admin
        )
        return [f"{o['key']}: {o['reason']}" for o in resp.json()["orders"]]
    return []


async def dead_letter_listing(relay_config: Path) -> str:
    """``cloud-relay deadletters list`` as a person would run it."""
    argv = [
        sys.executable,
        "-m",
        "cloud_relay",
        "deadletters",
        "list",
        "--config",
        str(relay_config),
    ]
    done = await asyncio.to_thread(
        subprocess.run, argv, capture_output=True, text=True, check=False
    )
    return (done.stdout + done.stderr).rstrip()
