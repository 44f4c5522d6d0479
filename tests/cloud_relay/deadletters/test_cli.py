"""``cloud-relay deadletters list|replay|discard`` run in-process on a SQLite file."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from cloud_relay.cli import main
from cloud_relay.config import StoreConfig
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.store import AuditEntry, DeadLetter, PostingStore
from tests.cloud_relay.deadletters import Seeder

T = TypeVar("T")
LONG_ERROR = "Odoo: " + "x" * 200 + "\nsecond line"


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith("CLOUD_RELAY__"):
            monkeypatch.delenv(name)
    path = tmp_path / "relay.toml"
    path.write_text(f'[store]\nurl = "sqlite:///{tmp_path}/relay.db"\n')
    return path


def with_store(config: Path, work: Callable[[PostingStore], Awaitable[T]]) -> T:
    """Run ``work`` on a posting store of the config's database (as another process would)."""

    url = config.read_text().split('"')[1]

    async def run() -> T:
        store = open_posting_store(StoreConfig(url=url))
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def seed(config: Path, *orders: str, error: str = "MO not found") -> list[int]:
    async def work(store: PostingStore) -> list[int]:
        seeder = Seeder(store)
        seeder.seq = await store.route_cursor(seeder.gateway_id)
        return [await seeder.dead(order, error) for order in orders]

    return with_store(config, work)


def letters(config: Path) -> dict[int, DeadLetter]:
    async def work(store: PostingStore) -> dict[int, DeadLetter]:
        return {dl.id: dl for dl in await store.list_dead_letters(status=None)}

    return with_store(config, work)


def audit(config: Path) -> list[AuditEntry]:
    async def work(store: PostingStore) -> list[AuditEntry]:
        return await store.audit_log()

    return with_store(config, work)


def relay(config: Path, *args: str) -> int:
    return main(["deadletters", *args, "--config", str(config)])


def test_list_shows_a_table_and_json(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = seed(config, "WH/MO/1", "WH/MO/2", error=LONG_ERROR)

    assert relay(config, "list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "ID",
        "ORDER",
        "TYPE",
        "EVENT",
        "ID",
        "DEAD",
        "SINCE",
        "ATTEMPTS",
        "ERROR",
    ]
    assert len(lines) == 3
    row = lines[1].split()
    assert row[:3] == [str(first), "WH/MO/1", "production.reported"]
    assert row[4] == "2025-03-01T09:02:00Z"
    assert lines[1].endswith("Odoo: " + "x" * 73 + "…")
    assert "second line" not in "\n".join(lines)

    assert relay(config, "list", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in shown] == [first, second]
    assert shown[0]["error"] == LONG_ERROR
    assert shown[0]["event"]["data"]["order"] == "WH/MO/1"
    assert shown[1]["order_key"] == "mo:WH/MO/2"


def test_list_filters_and_says_when_there_is_nothing(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert relay(config, "list") == 0
    assert capsys.readouterr().out == "no dead letters\n"
    first, second = seed(config, "WH/MO/1", "WH/MO/2")
    assert relay(config, "replay", str(first)) == 0
    capsys.readouterr()

    assert relay(config, "list", "--order", "WH/MO/1") == 0
    assert capsys.readouterr().out == "no dead letters for order WH/MO/1\n"
    assert relay(config, "list", "--status", "all", "--json") == 0
    statuses = {d["id"]: d["status"] for d in json.loads(capsys.readouterr().out)}
    assert statuses == {first: "replayed", second: "dead"}
    assert relay(config, "list", "--status", "replayed") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[-2:] == ["STATUS", "ERROR"]
    assert table[1].split()[0] == str(first)
    assert table[1].split()[-4:] == ["replayed", "MO", "not", "found"]


def test_replay_by_id_records_who_and_why(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = seed(config, "WH/MO/1", "WH/MO/1")

    assert relay(config, "replay", str(first), "--reason", "MO created in Odoo") == 0
    out = capsys.readouterr().out
    assert f"replayed dead letter {first}  order mo:WH/MO/1" in out
    [entry] = audit(config)
    assert entry.actor == f"{getpass.getuser()}@{socket.gethostname()} (cli)"
    assert (entry.action, entry.dead_letter_id, entry.reason) == (
        "replay",
        first,
        "MO created in Odoo",
    )

    assert relay(config, "replay", str(first), "999") == 1
    out, err = capsys.readouterr()
    assert f"skipped dead letter {first}: already replayed" in out
    assert "skipped dead letter 999: not found" in out
    assert err == "cloud-relay: nothing replayed\n"
    assert letters(config)[second].status == "dead"


def test_replay_an_order_or_all(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a1, b1, a2 = seed(config, "WH/MO/1", "WH/MO/2", "WH/MO/1")

    assert relay(config, "replay", "--order", "WH/MO/1") == 0
    out = capsys.readouterr().out
    assert f"replayed dead letter {a1}" in out and f"replayed dead letter {a2}" in out
    assert "2 event(s) queued again" in out
    assert relay(config, "replay", "--order", "WH/MO/1") == 0
    assert capsys.readouterr().out == "nothing to replay: no dead letters for order WH/MO/1\n"

    assert relay(config, "replay", "--all") == 0
    assert f"replayed dead letter {b1}" in capsys.readouterr().out
    assert {dl.status for dl in letters(config).values()} == {"replayed"}
    assert relay(config, "replay", "--all") == 0
    assert capsys.readouterr().out == "nothing to replay: no dead letters\n"


def test_discard(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    [dead] = seed(config, "WH/MO/1")

    assert relay(config, "discard", str(dead), "--reason", "scanned twice") == 0
    assert f"discarded dead letter {dead}  order mo:WH/MO/1" in capsys.readouterr().out
    letter = letters(config)[dead]
    assert (letter.status, letter.resolution) == ("discarded", "scanned twice")
    assert letter.resolved_by is not None and letter.resolved_by.endswith(" (cli)")

    assert relay(config, "discard", str(dead), "--reason", "again") == 1
    assert f"dead letter {dead} is already discarded" in capsys.readouterr().err
    assert relay(config, "discard", "999", "--reason", "typo") == 1
    assert "no dead letter 999" in capsys.readouterr().err
    assert [e.action for e in audit(config)] == ["discard"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["replay"], "give dead letter ids, --order NAME or --all"),
        (["replay", "1", "--all"], "give dead letter ids, --order NAME or --all"),
        (["replay", "--order", "A", "--all"], "give dead letter ids, --order NAME or --all"),
        (["replay", "--order", " "], "order is required"),
        (["discard", "1", "--reason", "  "], "--reason: reason is required"),
        (["list", "--order", ""], "--order"),
    ],
)
def test_bad_usage_exits_2(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    seed(config, "WH/MO/1")
    assert relay(config, *args) == 2
    assert expected in capsys.readouterr().err
    assert audit(config) == []


@pytest.mark.parametrize(
    "args",
    [["replay", "abc"], ["replay", "0"], ["discard", "1"], ["list", "--status", "open"]],
)
def test_argparse_refusals_exit_2(
    config: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        relay(config, *args)
    assert exit_.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_a_bad_config_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "absent.toml"
    assert relay(missing, "list") == 2
    assert f"{missing}: file not found" in capsys.readouterr().err
