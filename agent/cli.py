"""``edge-agent``: run, check-config, keygen, queue-stats, demo.

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
from agent.config import DEFAULT_CONFIG_PATH, AgentSettings, load_settings
from agent.errors import AgentError, ConfigError
from agent.health.status import as_dict

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


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
        raise ConfigError(f"[gateway] signing_key_file: {exc}") from exc
    if settings.opcua.endpoint:
        # Node ids, certificate files and rule fields are checked before a first connection.
        from agent.sources.opcua.connection import check_config
        from agent.sources.opcua.rules import RuleEngine

        try:
            check_config(settings.opcua)
            RuleEngine(settings.opcua)
        except ConfigError as exc:
            raise ConfigError(f"{config_path}: {exc}") from exc
    if settings.mqtt.password_file is not None and not settings.mqtt.password_file.is_file():
        raise ConfigError(f"[mqtt] password_file: {settings.mqtt.password_file} is not a file")
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
    from agent.queue.stats_reader import read_queue_stats

    stats = read_queue_stats(settings.queue_path)
    if as_json:
        print(json.dumps(as_dict(stats), indent=2))
    else:
        for field in dataclasses.fields(stats):
            print(f"{field.name:>20}: {getattr(stats, field.name)}")
    return EXIT_OK


def _run(settings: AgentSettings) -> int:
    from agent import logs
    from agent.app import run_agent

    logs.configure(settings.log.level, settings.log.format)
    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run_agent(settings))
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
        return _run(settings)
    except ConfigError as exc:
        print(f"edge-agent: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except AgentError as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
