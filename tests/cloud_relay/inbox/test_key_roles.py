"""Keys carry a role; keys registered before roles existed are gateway keys after the upgrade."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg

from cloud_relay.inbox import postgres as pg
from cloud_relay.inbox import sqlite as lite
from cloud_relay.inbox.postgres import PostgresInbox
from cloud_relay.inbox.sqlite import SqliteInbox


async def test_sqlite_keys_of_a_v1_inbox_become_gateway_keys(tmp_path: Path) -> None:
    path = tmp_path / "inbox.db"
    with sqlite3.connect(path) as conn:
        for statement in lite._MIGRATIONS[0]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.execute("INSERT INTO gateways (gateway_id) VALUES ('gw-1')")
        conn.execute(
            "INSERT INTO keys VALUES ('key-a', 'gw-1', 'pem', '2026-01-01T00:00:00.000000Z', NULL)"
        )
    inbox = SqliteInbox(path)
    await inbox.open()
    try:
        old = await inbox.get_key("key-a")
        assert old is not None and old.role == "gateway"
        await inbox.add_key("plm", "key-b", "pem-b", "publisher")
        new = await inbox.get_key("key-b")
        assert new is not None and new.role == "publisher"
    finally:
        await inbox.close()


async def test_postgres_keys_of_a_v1_inbox_become_gateway_keys(postgres_url: str) -> None:
    conn = await asyncpg.connect(postgres_url)
    try:
        for statement in pg._MIGRATIONS[0]:
            await conn.execute(statement)
        await conn.execute("CREATE TABLE inbox_schema (version integer NOT NULL)")
        await conn.execute("INSERT INTO inbox_schema VALUES (1)")
        await conn.execute("INSERT INTO gateways (gateway_id) VALUES ('gw-1')")
        await conn.execute(
            "INSERT INTO keys (key_id, gateway_id, public_key_pem) VALUES ('key-a', 'gw-1', 'p')"
        )
    finally:
        await conn.close()
    inbox = PostgresInbox(postgres_url, pool_size=1)
    await inbox.open()
    try:
        old = await inbox.get_key("key-a")
        assert old is not None and old.role == "gateway"
        await inbox.add_key("plm", "key-b", "pem-b", "publisher")
        new = await inbox.get_key("key-b")
        assert new is not None and new.role == "publisher"
    finally:
        await inbox.close()
