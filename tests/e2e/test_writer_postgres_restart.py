"""PostgreSQL restarts under a relay that is posting into Odoo: posting resumes by itself.

The relay's inbox and posting store live in a private PostgreSQL cluster this test starts (and
stops: ``pg_ctl stop -m fast`` ends every session, the writer lock's included). Events for
20 manufacturing orders are stored into the inbox a batch at a time while the relay posts them
into the sandbox; once some are posted and more are pending, the server stops, stays down
until the relay has noticed (its writer, losing the lock, cannot take it again: ``/healthz``
counts a restart of the writer), and starts again. Nothing touches the relay: it must take the
writer lock again and post the rest, and at the end Odoo holds each event's effect exactly
once. ``/metrics`` must count the same restarts as ``/healthz``.

Sizes: ``WRITER_PG_RESTART_EVENTS`` (default 600), ``WRITER_PG_RESTARTS`` (default 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cloud_relay.errors import TransientError
from cloud_relay.inbox.postgres import PostgresInbox
from cloud_relay.inbox.store import InboxEvent
from cloud_relay.posting.postgres import PostgresPostingStore
from cloud_relay.posting.store import PostingCounts
from tests.cloud_relay.posting.harness import Plant
from tests.cloud_relay.support import free_port
from tests.e2e.odoo_rig import SandboxCredentials, SandboxProcess, production_line
from tests.e2e.relay_fleet import ADMIN_TOKEN, RelayProcess, error_records, tail
from tests.e2e.test_writer_kill9 import ORDERS, audit_odoo, plan_events
from tests.fixtures.pg_cluster import PrivateCluster, private_postgres, wait_until_accepting

__all__ = ["private_postgres"]

GATEWAY_ID = "gw-writer-pg-restart"
EVENTS = int(os.environ.get("WRITER_PG_RESTART_EVENTS", "600"))
RESTARTS = int(os.environ.get("WRITER_PG_RESTARTS", "2"))
BATCH = 25
WRITER = {
    "concurrency": 4,
    "max_fold": 10,
    "patience_seconds": 1e9,
    "retry_initial_seconds": 0.05,
    "retry_max_seconds": 1.0,
    "poll_seconds": 0.05,
    "linger_seconds": 0.0,
    # An order completed with no consumption reported consumes nothing (the tally's view).
    "consume_bom_when_unreported": False,
}
STEP_SECONDS = 90.0
POLL_SECONDS = 0.02


class PostgresWriterRelay(RelayProcess):
    """A relay on a PostgreSQL store whose writer posts into the sandbox."""

    def __init__(self, directory: Path, url: str, sandbox: SandboxCredentials) -> None:
        super().__init__("writer", directory, url, free_port())
        options = "".join(f"{key} = {json.dumps(value)}\n" for key, value in WRITER.items())
        self.config.write_text(
            f'[server]\nlisten = "127.0.0.1:{self.port}"\n'
            f'[store]\nurl = "{url}"\npool_size = 4\n'
            f'[admin]\ntoken = "{ADMIN_TOKEN}"\n'
            '[log]\nformat = "json"\n'
            f"[odoo]\nurl = {json.dumps(sandbox.url)}\n"
            f"database = {json.dumps(sandbox.database)}\n"
            f"login = {json.dumps(sandbox.login)}\n"
            f"api_key = {json.dumps(sandbox.api_key)}\n"
            "retry_backoff_seconds = 0.01\n"
            f"[writer]\n{options}"
        )

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=10) as client:
            body: dict[str, Any] = (await client.get(self.base_url + "/healthz")).json()
        return body

    async def writer_restarts_metric(self) -> int:
        async with httpx.AsyncClient(timeout=10) as client:
            response = await client.get(self.base_url + "/metrics")
        response.raise_for_status()
        for family in text_string_to_metric_families(response.text):
            if family.name == "cloud_relay_writer_restarts":
                return int(family.samples[0].value)
        raise AssertionError("the relay's /metrics has no cloud_relay_writer_restarts")


class Feed:
    """The test's own view of the store: stores batches and reads progress, riding out the
    restarts (every call is retried while the server is away)."""

    def __init__(self, url: str, events: list[InboxEvent]) -> None:
        self.inbox = PostgresInbox(url, pool_size=2)
        self.postings = PostgresPostingStore(url, pool_size=2)
        self._events = events
        self.stored = 0

    async def open(self) -> None:
        await self.inbox.open()
        await self.postings.open()

    async def close(self) -> None:
        await self.postings.close()
        await self.inbox.close()

    @property
    def done(self) -> bool:
        return self.stored == len(self._events)

    async def store_next(self) -> None:
        if self.done:
            return
        batch = self._events[self.stored : self.stored + BATCH]
        try:
            await self.inbox.store_batch(GATEWAY_ID, "test-key", batch[0].seq, batch)
        except TransientError:
            return  # the server is away: the next round tries again
        self.stored += len(batch)

    async def counts(self) -> PostingCounts | None:
        try:
            return await self.postings.counts()
        except TransientError:
            return None


async def wait_until(
    condition: Callable[[], Awaitable[bool]],
    what: str,
    relay: RelayProcess,
    sandbox: SandboxProcess,
    between: Callable[[], Awaitable[None]],
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STEP_SECONDS
    while not await condition():
        sandbox.alive()
        assert relay.running, f"the relay exited:\n{tail(relay.logs[-1])}"
        assert loop.time() < deadline, f"timed out waiting until {what}"
        await between()
        await asyncio.sleep(POLL_SECONDS)


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_posting_resumes_after_postgres_restarts(
    tmp_path: Path, private_postgres: PrivateCluster
) -> None:
    seed = int(os.environ.get("WRITER_PG_RESTART_SEED", random.randrange(2**32)))
    where = f"(seed {seed}; logs in {tmp_path})"
    url = await private_postgres.create_database(f"relay_{uuid.uuid4().hex[:8]}")
    sandbox = SandboxProcess(tmp_path)
    creds = await sandbox.start()
    relay = PostgresWriterRelay(tmp_path, url, creds)
    feed: Feed | None = None
    try:
        x = await sandbox.admin()
        line = await production_line(x, ORDERS)
        events, tallies = plan_events(
            Plant(GATEWAY_ID), list(line.orders), EVENTS, random.Random(seed)
        )
        feed = Feed(url, events)
        await feed.open()
        await relay.start()
        await sandbox.reset_calls()

        for restart in range(RESTARTS):
            share = len(events) * (restart + 1) // (RESTARTS + 1)

            async def posting_midstream(share: int = share) -> bool:
                counts = await feed.counts() if feed else None
                return (
                    counts is not None
                    and counts.applied >= share - 2 * BATCH
                    and counts.pending > 0
                )

            async def more(share: int = share) -> None:
                assert feed is not None
                if feed.stored < share:
                    await feed.store_next()

            await wait_until(
                posting_midstream, f"posting is under way before restart {restart} {where}",
                relay, sandbox, more,
            )  # fmt: skip
            before = (await relay.health())["writer"]["restarts"]
            await asyncio.to_thread(private_postgres.stop)

            async def noticed(before: int = before) -> bool:
                return int((await relay.health())["writer"]["restarts"]) > before

            async def idle() -> None:
                return None

            await wait_until(
                noticed, f"the relay's writer notices PostgreSQL is gone {where}",
                relay, sandbox, idle,
            )  # fmt: skip
            await asyncio.to_thread(private_postgres.start)
            await wait_until_accepting(private_postgres)

        async def all_posted() -> bool:
            assert feed is not None
            counts = await feed.counts()
            return feed.done and counts is not None and counts.applied == len(events)

        async def rest() -> None:
            assert feed is not None
            await feed.store_next()

        await wait_until(all_posted, f"every event is posted {where}", relay, sandbox, rest)
        calls = await sandbox.calls()

        counts = await feed.postings.counts()
        assert (counts.applied, counts.pending, counts.dead, counts.parked_orders) == (
            len(events), 0, 0, 0,
        ), (counts, where)  # fmt: skip
        await audit_odoo(x, line, tallies, calls, where)
        health = await relay.health()
        assert health["status"] == "ok", health
        writer = health["writer"]
        assert writer["state"] == "posting" and writer["healthy"], (health, where)
        assert await relay.writer_restarts_metric() == writer["restarts"], where
        print(
            f"writer under {RESTARTS} PostgreSQL restarts: {len(events)} events posted once,"
            f" {writer['restarts']} writer restarts (last: {writer.get('last_crash')})"
        )
        assert await relay.stop() == 0, tail(relay.logs[-1])
        for log in relay.logs:
            # The restarts are logged as errors with their traceback: that is the point.
            unexpected = [r for r in error_records(log) if r.get("logger") != "runtime.supervisor"]
            assert unexpected == [], f"{log.name} holds errors {where}"
    finally:
        await relay.stop()
        if feed is not None:
            await feed.close()
        await sandbox.stop()
