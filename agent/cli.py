"""``edge-agent``: run, check-config, keygen, queue-stats, rejects, demo.

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from agent import __version__
from agent.config import DEFAULT_CONFIG_PATH, AgentSettings, check_state_dir, load_settings
from agent.errors import AgentError, ConfigError

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
#: Modules that only an extra of the package installs, and that extra.
EXTRA_OF_MODULE = {
    "asyncua": "agent",
    "paho": "agent",
    "google": "agent",  # protobuf, for Sparkplug B
    "fastapi": "relay",
    "asyncpg": "relay",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Plant-floor edge agent: OPC UA and MQTT, durable queue, signed upload.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    config_opt = argparse.ArgumentParser(add_help=False)
    config_opt.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"settings file (default {DEFAULT_CONFIG_PATH})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[config_opt], help="run the agent until stopped")
    check = sub.add_parser("check-config", parents=[config_opt], help="validate the settings")
    check.add_argument("--json", action="store_true", help="print the effective settings as JSON")
    keygen = sub.add_parser("keygen", help="make the gateway's Ed25519 signing key")
    keygen.add_argument(
        "--out", type=Path, required=True, help="private key path (public: PATH.pub)"
    )
    stats = sub.add_parser("queue-stats", parents=[config_opt], help="what the queue holds")
    stats.add_argument("--json", action="store_true", help="machine-readable output")
    rejects = sub.add_parser(
        "rejects", parents=[config_opt], help="the payloads the sources rejected, and why"
    )
    rejects.add_argument("--json", action="store_true", help="machine-readable output")
    rejects.add_argument(
        "--limit", type=_positive, default=20, help="newest N (default %(default)s)"
    )
    demo = sub.add_parser("demo", help="a simulated line, the agent and a relay, on loopback")
    from agent.demo import add_arguments

    add_arguments(demo)
    return parser


def _check_config(settings: AgentSettings, config_path: Path, as_json: bool) -> int:
    from wire.errors import WireError
    from wire.keys import key_id, load_private_key

    try:
        key = load_private_key(settings.gateway.signing_key_file)
    except WireError as exc:
        raise ConfigError(f"{config_path}: gateway.signing_key_file: {exc}") from exc
    try:
        check_state_dir(settings.gateway.state_dir, create=False)
    except ConfigError as exc:
        raise ConfigError(f"{config_path}: {exc}") from exc
    from agent.sources import registry

    for source_plan in registry.plan(settings):
        if source_plan.enabled:
            try:
                source_plan.kind.check(source_plan.config)
            except ConfigError as exc:
                raise ConfigError(f"{config_path}: {exc}") from exc
    from agent.queue.reserve import reserve_warning

    warning = reserve_warning(settings.queue_path, settings.queue.disk_reserve_bytes)
    if warning:
        print(f"edge-agent: warning: {warning}", file=sys.stderr)
    if as_json:
        print(settings.model_dump_json(indent=2))
    else:
        print(
            f"configuration is valid: gateway {settings.gateway.id}, key id "
            f"{key_id(key.public_key())}, queue {settings.queue_path}, relay {settings.relay.url}"
        )
    return EXIT_OK


def _keygen(out: Path) -> int:
    from wire.errors import WireError
    from wire.keys import key_id, write_keypair

    try:
        public_key = write_keypair(out)
    except WireError as exc:
        raise ConfigError(str(exc)) from exc
    print(
        f"private key: {out} (mode 0600)\npublic key:  {out}.pub\nkey id:      {key_id(public_key)}"
    )
    return EXIT_OK


def _queue_stats(settings: AgentSettings, as_json: bool) -> int:
    from agent.health.status import as_dict
    from agent.queue.stats_reader import read_queue_stats

    stats = read_queue_stats(settings.queue_path)
    if as_json:
        print(json.dumps(as_dict(stats), indent=2))
    else:
        for field in dataclasses.fields(stats):
            print(f"{field.name:>20}: {getattr(stats, field.name)}")
    return EXIT_OK


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


#: Characters of a rejected payload shown in the ``rejects`` table.
PAYLOAD_WIDTH = 60


def _rejects(settings: AgentSettings, limit: int, as_json: bool) -> int:
    from agent.queue.rejects_reader import read_rejects

    rejects, total = read_rejects(settings.queue_path, limit)
    if as_json:
        listing = [
            {
                "at": r.at.isoformat(),
                "source": r.source,
                "where": r.where,
                "reason": r.reason,
                "payload": r.payload.decode("utf-8", "replace"),
            }
            for r in rejects
        ]
        print(json.dumps({"total": total, "rejects": listing}, indent=2))
        return EXIT_OK
    if not rejects:
        print("no payload rejected" if not total else f"{total} rejected; none kept")
        return EXIT_OK
    print(f"{total} payload(s) rejected in all; the newest {len(rejects)}, newest first:")
    for r in rejects:
        payload = " ".join(r.payload.decode("utf-8", "replace").split())
        if len(payload) > PAYLOAD_WIDTH:
            payload = payload[: PAYLOAD_WIDTH - 1] + "…"
        print(f"{r.at.strftime('%Y-%m-%d %H:%M:%S')} UTC  {r.source}  {r.where}")
        print(f"    why:     {r.reason}")
        print(f"    payload: {payload}")
    return EXIT_OK


def _run(settings: AgentSettings, config_path: Path) -> int:
    from agent import logs
    from agent.app import run_agent

    logs.configure(settings.log.level, settings.log.format)
    try:
        with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
            asyncio.run(run_agent(settings))
    except ConfigError as exc:
        # Settings the file (or environment) gave that turn out unusable at start.
        raise ConfigError(f"{config_path}: {exc}") from exc
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``edge-agent`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "keygen":
            return _keygen(args.out)
        if args.command == "demo":
            from agent.demo import run_demo

            return run_demo(args)
        settings = load_settings(args.config)
        if args.command == "check-config":
            return _check_config(settings, args.config, args.json)
        if args.command == "queue-stats":
            return _queue_stats(settings, args.json)
        if args.command == "rejects":
            return _rejects(settings, args.limit, args.json)
        return _run(settings, args.config)
    except ConfigError as exc:
        print(f"edge-agent: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AgentError as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF_MODULE.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"edge-agent: {args.command} needs {exc.name}, which this installation lacks: "
            f"pip install 'plant-link[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
