"""``cloud-relay``: run, check-config, gateway add|list|revoke, deadletters list|replay|discard,
bom submit|list|diff|approve|refuse|retry|rollback|history.

Exit codes: 0 ok, 1 runtime failure, 2 bad config or usage. Settings come from ``--config``
and ``CLOUD_RELAY__SECTION__KEY`` environment variables (which win).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import socket
import sys
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

from cloud_relay import __version__
from cloud_relay.config import DEFAULT_CONFIG_PATH, RelaySettings, StoreConfig, load_settings
from cloud_relay.deadletters import (
    DeadLetterError,
    InvalidRequest,
    dead_letter_dict,
    discard,
    list_dead,
    replay,
)
from cloud_relay.deadletters.service import LIST_STATUSES
from cloud_relay.errors import ConfigError, RelayError, TransientError
from cloud_relay.inbox.store import GatewayInfo
from cloud_relay.posting.keys import order_name
from cloud_relay.posting.store import DeadLetter, PostingStore

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2
#: Modules that only an extra of the package installs, and that extra.
EXTRA_OF_MODULE = {"fastapi": "relay", "asyncpg": "relay", "apscheduler": "relay"}
#: Characters of a dead letter's error shown in the ``deadletters list`` table.
ERROR_WIDTH = 80


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
    add.add_argument(
        "--role",
        choices=("gateway", "publisher"),
        default="gateway",
        help="gateway: sends event batches; publisher: submits BOMs (default %(default)s)",
    )
    listing = gw_sub.add_parser("list", parents=[config_opt], help="gateways, keys, ack points")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    revoke = gw_sub.add_parser("revoke", parents=[config_opt], help="revoke a gateway or one key")
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("gateway_id", nargs="?", help="revoke every key of this gateway")
    target.add_argument("--key-id", help="revoke only this key")
    _deadletters_parser(sub, config_opt)
    from cloud_relay.masterdata.arguments import add_bom_parser

    add_bom_parser(sub, config_opt)

    from cloud_relay.reconcile.arguments import add_reconcile_parser

    add_reconcile_parser(sub, config_opt)
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


def _deadletters_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    config_opt: argparse.ArgumentParser,
) -> None:
    deadletters = sub.add_parser(
        "deadletters", help="list, replay and discard events Odoo would not take"
    )
    dl_sub = deadletters.add_subparsers(dest="deadletters_command", required=True, metavar="ACTION")
    listing = dl_sub.add_parser("list", parents=[config_opt], help="dead letters, oldest first")
    listing.add_argument("--json", action="store_true", help="machine-readable output")
    listing.add_argument(
        "--status",
        choices=LIST_STATUSES,
        default="dead",
        help="which dead letters (default %(default)s: those still waiting for a decision)",
    )
    listing.add_argument("--order", help="only this MO name or full order key")
    replay = dl_sub.add_parser(
        "replay",
        parents=[config_opt],
        help="queue events again, at the end of their order's queue",
        usage="cloud-relay deadletters replay (ID ... | --order NAME | --all) [--reason TEXT]",
    )
    replay.add_argument("ids", nargs="*", type=_dead_letter_id, metavar="ID", help="dead letters")
    replay.add_argument("--order", help="every dead letter of this MO name or full order key")
    replay.add_argument("--all", action="store_true", help="every dead letter")
    replay.add_argument("--reason", help="why, for the audit log")
    discard = dl_sub.add_parser(
        "discard", parents=[config_opt], help="close a dead letter without posting it"
    )
    discard.add_argument("dead_letter_id", type=_dead_letter_id, metavar="ID")
    discard.add_argument("--reason", required=True, help="why, for the audit log")


def _dead_letter_id(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a dead letter id (a positive number)")
    return value


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
    from cloud_relay.storage.check import check_store

    settings.check_secrets()
    try:
        store = await check_store(settings.store)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
    print(f"configuration is valid: listen {settings.server.listen}, store: {store}")
    return EXIT_OK


async def _gateway_add(
    settings: RelaySettings, gateway_id: str, public_key: Path, role: str = "gateway"
) -> int:
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
        await store.add_key(gateway_id, kid, public_key_pem(key).decode(), role)
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


def opened_posting_store(
    config: StoreConfig,
) -> contextlib.AbstractAsyncContextManager[PostingStore]:
    """The posting store for the block (imported late: the relay app pulls in uvicorn)."""
    from cloud_relay.app import opened_posting_store as opened

    return opened(config)


def _cli_actor() -> str:
    """Who is at the terminal, for the audit log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} (cli)"


async def _deadletters_list(
    settings: RelaySettings, status: str, order: str | None, as_json: bool
) -> int:
    async with opened_posting_store(settings.store) as store:
        try:
            letters = await list_dead(store, status=status, order=order)
        except InvalidRequest as exc:
            raise _UsageError(f"--order: {exc}") from exc
    if as_json:
        print(json.dumps([dead_letter_dict(letter) for letter in letters], indent=2))
        return EXIT_OK
    if not letters:
        which = "" if status in ("dead", "all") else f"{status} "
        print(f"no {which}dead letters" + (f" for order {order}" if order else ""))
        return EXIT_OK
    _print_table(_dead_letter_rows(letters, with_status=status != "dead"))
    return EXIT_OK


def _dead_letter_rows(letters: Sequence[DeadLetter], *, with_status: bool) -> list[list[str]]:
    status = ["STATUS"] if with_status else []
    rows = [["ID", "ORDER", "TYPE", "EVENT ID", "DEAD SINCE", "ATTEMPTS", *status, "ERROR"]]
    for letter in letters:
        rows.append(
            [
                str(letter.id),
                order_name(letter.order_key) or letter.order_key,
                letter.type,
                letter.event_id,
                letter.dead_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                str(letter.attempts),
                *([letter.status] if with_status else []),
                _first_line(letter.error),
            ]
        )
    return rows


def _first_line(text: str, width: int = ERROR_WIDTH) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def _print_table(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip())


async def _deadletters_replay(
    settings: RelaySettings,
    ids: list[int],
    order: str | None,
    all_: bool,
    reason: str | None,
) -> int:
    if sum((bool(ids), order is not None, all_)) != 1:
        raise _UsageError("deadletters replay: give dead letter ids, --order NAME or --all")
    async with opened_posting_store(settings.store) as store:
        try:
            result = await replay(
                store,
                ids=ids or None,
                order=order,
                all_=all_,
                actor=_cli_actor(),
                reason=reason,
            )
        except InvalidRequest as exc:
            raise _UsageError(f"deadletters replay: {exc}") from exc
    for done in result.replayed:
        print(f"replayed dead letter {done.id}  order {done.order_key}  event {done.event_id}")
    for skipped in result.skipped:
        print(f"skipped dead letter {skipped.id}: {skipped.reason}")
    if not result.replayed and ids:
        print("cloud-relay: nothing replayed", file=sys.stderr)
        return EXIT_FAILURE
    if not result.replayed:
        print("nothing to replay: no dead letters" + (f" for order {order}" if order else ""))
        return EXIT_OK
    print(f"{len(result.replayed)} event(s) queued again; the Odoo writer posts them next")
    return EXIT_OK


async def _deadletters_discard(settings: RelaySettings, dead_letter_id: int, reason: str) -> int:
    async with opened_posting_store(settings.store) as store:
        try:
            letter = await discard(store, dead_letter_id, actor=_cli_actor(), reason=reason)
        except InvalidRequest as exc:
            raise _UsageError(f"deadletters discard: --reason: {exc}") from exc
        except DeadLetterError as exc:
            print(f"cloud-relay: {exc}", file=sys.stderr)
            return EXIT_FAILURE
    print(f"discarded dead letter {letter.id}  order {letter.order_key}  event {letter.event_id}")
    return EXIT_OK


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
    except TransientError as exc:
        # Down, not misconfigured: a runtime failure that a restart may fix.
        print(f"cloud-relay: cannot reach the store (is it running?): {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "sandbox":
        return _sandbox(args.listen, args.odoo_version, args.database, args.json)
    if args.command == "bom" and args.bom_command == "demo":
        from cloud_relay.masterdata.cli import run_demo

        return asyncio.run(run_demo(args))
    settings = load_settings(args.config)
    if args.command == "run":
        return _run(settings)
    if args.command == "check-config":
        return asyncio.run(_check_config(settings, args.config))
    if args.command == "deadletters":
        return asyncio.run(_deadletters(settings, args))
    if args.command == "bom":
        from cloud_relay.masterdata.cli import run_bom

        return asyncio.run(run_bom(settings, args))
    if args.command == "reconcile":
        from cloud_relay.reconcile import cli as reconcile_cli

        return asyncio.run(reconcile_cli.run(settings, args))
    if args.gateway_command == "add":
        return asyncio.run(_gateway_add(settings, args.gateway_id, args.public_key, args.role))
    if args.gateway_command == "list":
        return asyncio.run(_gateway_list(settings, args.json))
    return asyncio.run(_gateway_revoke(settings, args.gateway_id, args.key_id))


async def _deadletters(settings: RelaySettings, args: argparse.Namespace) -> int:
    if args.deadletters_command == "list":
        return await _deadletters_list(settings, args.status, args.order, args.json)
    if args.deadletters_command == "replay":
        return await _deadletters_replay(settings, args.ids, args.order, args.all, args.reason)
    return await _deadletters_discard(settings, args.dead_letter_id, args.reason)


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
    except ModuleNotFoundError as exc:
        extra = EXTRA_OF_MODULE.get((exc.name or "").partition(".")[0])
        if extra is None:
            raise
        print(
            f"cloud-relay: {args.command} needs {exc.name}, which this installation lacks: "
            f"pip install 'plant-link[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
