"""``cloud-relay``: run, check-config, gateway add|list|revoke.

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage. Settings come from ``--config``
and ``CLOUD_RELAY__SECTION__KEY`` environment variables (which win).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cloud_relay import __version__
from cloud_relay.config import DEFAULT_CONFIG_PATH, RelaySettings, load_settings
from cloud_relay.errors import ConfigError, RelayError
from cloud_relay.inbox.store import GatewayInfo

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2


class _UsageError(Exception):
    """Arguments that parse but make no sense (exit 2)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloud-relay",
        description="Cloud relay: verifies and stores gateway batches, then posts them into Odoo.",
    )
    parser.add_argument("--version", action="version", version=f"cloud-relay {__version__}")
    config_opt = argparse.ArgumentParser(add_help=False)
    config_opt.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help=f"settings file (default {DEFAULT_CONFIG_PATH})",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    sub.add_parser("run", parents=[config_opt], help="serve until stopped (SIGTERM: graceful)")
    sub.add_parser(
        "check-config", parents=[config_opt], help="validate the settings and reach the store"
    )
    gateway = sub.add_parser("gateway", help="register, list and revoke gateway keys")
    gw_sub = gateway.add_subparsers(dest="gateway_command", required=True, metavar="ACTION")
    add = gw_sub.add_parser("add", parents=[config_opt], help="register a gateway's public key")
    add.add_argument("--id", required=True, dest="gateway_id", help="the gateway's id")
    add.add_argument("--public-key", required=True, type=Path, help="PEM file of the public key")
    listing = gw_sub.add_parser("list", parents=[config_opt], help="gateways, keys, ack points")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = gw_sub.add_parser("revoke", parents=[config_opt], help="revoke a gateway or one key")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("gateway_id", nargs="?", help="revoke every key of this gateway")
    target.add_argument("--key-id", help="revoke only this key")
    sandbox = sub.add_parser(
        "sandbox", help="serve the Odoo sandbox (an Odoo stand-in) on loopback"
    )
    sandbox.add_argument(
        "--listen", default="127.0.0.1:8069", help="host:port (default %(default)s)"
    )
    sandbox.add_argument(
        "--odoo-version",
        type=int,
        choices=(17, 18, 19),
        default=18,
        help="Odoo version to answer as",
    )
    sandbox.add_argument("--database", default="plant", help="database name (default %(default)s)")
    sandbox.add_argument("--json", action="store_true", help="print the credentials as JSON")
    return parser


def _sandbox(listen: str, version: int, database: str, as_json: bool) -> int:
    from cloud_relay.odoo.sandbox import SandboxInfo, serve_sandbox

    def ready(info: SandboxInfo, base_url: str) -> None:
        shown = {
            "url": base_url,
            "odoo_version": info.odoo_version,
            "database": info.database,
            "login": info.login,
            "api_key": info.api_key,
            "admin_login": info.admin_login,
            "admin_api_key": info.admin_api_key,
        }
        if as_json:
            print(json.dumps(shown), flush=True)
        else:
            print(f"Odoo {info.odoo_version} sandbox at {base_url}, database {info.database}")
            print(f"  connector login {info.login}, API key {info.api_key}")
            print(f"  admin login {info.admin_login}, API key {info.admin_api_key}", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_sandbox(listen, version, database=database, on_ready=ready))
    return EXIT_OK


async def _check_config(settings: RelaySettings, path: Path) -> int:
    from cloud_relay.app import opened_store

    settings.admin.resolve_token()
    try:
        async with opened_store(settings.store) as store:
            await store.ping()
    except RelayError as exc:
        raise ConfigError(f"{path}: store.url: cannot use the store: {exc}") from exc
    print(f"configuration is valid: listen {settings.server.listen}, store reachable")
    return EXIT_OK


async def _gateway_add(settings: RelaySettings, gateway_id: str, public_key: Path) -> int:
    from cloud_relay.app import opened_store
    from wire.errors import WireError
    from wire.events import GATEWAY_ID_PATTERN
    from wire.keys import key_id, load_public_key, public_key_pem

    if not re.match(GATEWAY_ID_PATTERN, gateway_id):
        raise _UsageError(f"--id {gateway_id!r}: must match {GATEWAY_ID_PATTERN}")
    try:
        key = load_public_key(public_key)
    except WireError as exc:
        raise _UsageError(f"--public-key: {exc}") from exc
    kid = key_id(key)
    async with opened_store(settings.store) as store:
        await store.add_key(gateway_id, kid, public_key_pem(key).decode())
    print(kid)
    print(f"registered key {kid} for gateway {gateway_id}", file=sys.stderr)
    return EXIT_OK


async def _gateway_list(settings: RelaySettings, as_json: bool) -> int:
    from cloud_relay.app import opened_store

    async with opened_store(settings.store) as store:
        gateways = await store.list_gateways()
    if as_json:
        print(json.dumps([_gateway_dict(info) for info in gateways], indent=2))
        return EXIT_OK
    if not gateways:
        print("no gateways registered")
    for info in gateways:
        seen = info.last_seen_at.isoformat() if info.last_seen_at else "never"
        print(f"{info.gateway_id}  acked_seq {info.acked_seq}  last seen {seen}")
        for key in info.keys:
            state = f"revoked {key.revoked_at.isoformat()}" if key.revoked_at else "active"
            print(f"    key {key.key_id}  added {key.added_at.isoformat()}  {state}")
    return EXIT_OK


async def _gateway_revoke(settings: RelaySettings, gateway_id: str | None, kid: str | None) -> int:
    from cloud_relay.app import opened_store

    async with opened_store(settings.store) as store:
        if kid is not None:
            revoked = await store.revoke_key(kid)
            key = await store.get_key(kid) if not revoked else None
            if not revoked and key is None:
                print(f"cloud-relay: no key {kid}", file=sys.stderr)
                return EXIT_FAILURE
            print(f"revoked key {kid}" if revoked else f"key {kid} was already revoked")
            return EXIT_OK
        assert gateway_id is not None
        revoked = await store.revoke_gateway(gateway_id)
        if not revoked and await store.get_gateway(gateway_id) is None:
            print(f"cloud-relay: no gateway {gateway_id}", file=sys.stderr)
            return EXIT_FAILURE
        print(f"revoked {revoked} key(s) of gateway {gateway_id}")
        return EXIT_OK


def _gateway_dict(info: GatewayInfo) -> dict[str, Any]:
    def when(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "gateway_id": info.gateway_id,
        "acked_seq": info.acked_seq,
        "last_seen_at": when(info.last_seen_at),
        "keys": [
            {"key_id": k.key_id, "added_at": when(k.added_at), "revoked_at": when(k.revoked_at)}
            for k in info.keys
        ],
    }


def _run(settings: RelaySettings) -> int:
    from cloud_relay import logs
    from cloud_relay.app import run_relay

    logs.configure(settings.log.level, settings.log.format)
    try:
        asyncio.run(run_relay(settings))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"cloud-relay: cannot serve on {settings.server.listen}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        return _sandbox(args.listen, args.odoo_version, args.database, args.json)
    settings = load_settings(args.config)
    if args.command == "run":
        return _run(settings)
    if args.command == "check-config":
        return asyncio.run(_check_config(settings, args.config))
    if args.gateway_command == "add":
        return asyncio.run(_gateway_add(settings, args.gateway_id, args.public_key))
    if args.gateway_command == "list":
        return asyncio.run(_gateway_list(settings, args.json))
    return asyncio.run(_gateway_revoke(settings, args.gateway_id, args.key_id))


def _join_key_ids(argv: list[str]) -> list[str]:
    """Key ids are base64url and may start with '-', which argparse would take for an option."""
    out: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--key-id":
            value = next(args, None)
            out.append(arg if value is None else f"--key-id={value}")
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``cloud-relay`` console script."""
    args = _parser().parse_args(_join_key_ids(sys.argv[1:] if argv is None else list(argv)))
    try:
        return _dispatch(args)
    except ConfigError as exc:
        print(f"cloud-relay: configuration error:\n{exc}", file=sys.stderr)
        return EXIT_CONFIG
    except _UsageError as exc:
        print(f"cloud-relay: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except RelayError as exc:
        print(f"cloud-relay: {exc}", file=sys.stderr)
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
