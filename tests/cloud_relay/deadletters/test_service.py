"""The dead-letter service against both stores: listing, replay, discard and their audit."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from cloud_relay.config import StoreConfig
from cloud_relay.deadletters import (
    DeadLetterNotDead,
    DeadLetterNotFound,
    InvalidRequest,
    Replayed,
    ReplayResult,
    Skipped,
    audit_dict,
    dead_letter_dict,
    discard,
    list_dead,
    order_state_dict,
    replay,
    replay_result_dict,
)
from cloud_relay.posting.factory import open_posting_store
from cloud_relay.posting.store import PostingStore
from tests.cloud_relay.deadletters import Seeder, at
from tests.fixtures.postgres import postgres_url

__all__ = ["postgres_url"]

ME = "ana@plant (cli)"


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[PostingStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/relay.db"
    else:
        url = request.getfixturevalue("postgres_url")
    posting = open_posting_store(StoreConfig(url=url, pool_size=4))
    await posting.open()
    try:
        yield posting
    finally:
        await posting.close()


@pytest.fixture
def seed(store: PostingStore) -> Seeder:
    return Seeder(store)


async def ids_of(store: PostingStore, **kwargs: Any) -> list[int]:
    return [letter.id for letter in await list_dead(store, **kwargs)]


async def pending_events(store: PostingStore, order_key: str) -> list[str]:
    return [p.event_id for p in await store.pending(order_key, 100)]


async def test_list_filters_by_status_and_order(store: PostingStore, seed: Seeder) -> None:
    a1 = await seed.dead("WH/MO/1")
    b1 = await seed.dead("WH/MO/2")
    a2 = await seed.dead("WH/MO/1")
    scrap = await seed.kill(
        (await seed.queue_key("scrap:BOLT", b'{"type":"scrap.reported"}')).order_key, "no stock"
    )
    await discard(store, b1, actor=ME, reason="duplicate")

    assert await ids_of(store) == [a1, a2, scrap]
    assert await ids_of(store, status="discarded") == [b1]
    assert await ids_of(store, status="replayed") == []
    assert await ids_of(store, status="all") == [a1, b1, a2, scrap]
    assert await ids_of(store, order="WH/MO/1") == [a1, a2]
    assert await ids_of(store, order="mo:WH/MO/1") == [a1, a2]
    assert await ids_of(store, order="scrap:BOLT") == [scrap]
    assert await ids_of(store, order="WH/MO/9") == []
    assert await ids_of(store, status="all", order=" WH/MO/2 ") == [b1]
    assert await ids_of(store, status="all", limit=2) == [a1, b1]
    with pytest.raises(InvalidRequest, match="status"):
        await list_dead(store, status="open")
    with pytest.raises(InvalidRequest, match="order"):
        await list_dead(store, order="  ")


async def test_replay_by_id_queues_the_event_last_and_audits(
    store: PostingStore, seed: Seeder
) -> None:
    dead = await seed.dead("WH/MO/1", "Manufacturing order WH/MO/1 does not exist")
    letter = await store.get_dead_letter(dead)
    assert letter is not None
    behind = await seed.queue("WH/MO/1")

    result = await replay(store, ids=[dead], actor=ME, reason="  MO created in Odoo  ", now=at(90))

    assert result == ReplayResult((Replayed(dead, "mo:WH/MO/1", letter.event_id),), ())
    assert await pending_events(store, "mo:WH/MO/1") == [behind.event_id, letter.event_id]
    replayed = await store.get_dead_letter(dead)
    assert replayed is not None
    assert (replayed.status, replayed.resolved_by, replayed.resolution) == (
        "replayed",
        ME,
        "MO created in Odoo",
    )
    assert replayed.resolved_at == at(90)
    [entry] = await store.audit_log()
    assert audit_dict(entry) == {
        "id": entry.id,
        "at": "2025-03-01T09:30:00Z",
        "actor": ME,
        "action": "replay",
        "dead_letter_id": dead,
        "order_key": "mo:WH/MO/1",
        "event_id": letter.event_id,
        "reason": "MO created in Odoo",
    }


async def test_replay_skips_what_it_cannot_replay_and_says_why(
    store: PostingStore, seed: Seeder
) -> None:
    done, thrown, fresh = [await seed.dead(f"WH/MO/{n}") for n in (1, 2, 3)]
    await replay(store, ids=[done], actor=ME)
    await discard(store, thrown, actor=ME, reason="scanned twice")

    result = await replay(store, ids=[999, fresh, thrown, done, fresh], actor=ME, reason=" ")

    assert [r.id for r in result.replayed] == [fresh]
    assert result.skipped == (
        Skipped(done, "already replayed"),
        Skipped(thrown, "discarded"),
        Skipped(999, "not found"),
    )
    assert replay_result_dict(result)["skipped"][2] == {"id": 999, "reason": "not found"}
    latest = (await store.audit_log(1))[0]
    assert (latest.dead_letter_id, latest.reason) == (fresh, None)


async def test_replay_of_an_order_takes_only_its_dead_letters(
    store: PostingStore, seed: Seeder
) -> None:
    a1 = await seed.dead("WH/MO/1")
    b1 = await seed.dead("WH/MO/2")
    a2 = await seed.dead("WH/MO/1")

    result = await replay(store, order="WH/MO/1", actor=ME, reason="order fixed")

    assert [r.id for r in result.replayed] == [a1, a2]
    assert result.skipped == ()
    assert await ids_of(store) == [b1]
    assert len(await pending_events(store, "mo:WH/MO/1")) == 2
    again = await replay(store, order="mo:WH/MO/1", actor=ME)
    assert again == ReplayResult((), ())


async def test_replay_all_takes_every_dead_letter_in_order(
    store: PostingStore, seed: Seeder
) -> None:
    letters = [await seed.dead(f"WH/MO/{n % 3}") for n in range(7)]
    result = await replay(store, all_=True, actor=ME)
    assert [r.id for r in result.replayed] == letters
    assert await ids_of(store) == []
    assert (await store.counts()).pending == 7


async def test_replay_all_in_batches_replays_each_event_once(
    store: PostingStore, seed: Seeder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer that refuses replayed events at once must not make ``--all`` loop."""
    monkeypatch.setattr("cloud_relay.deadletters.service.REPLAY_BATCH", 2)
    letters = [await seed.dead(f"WH/MO/{n}") for n in range(5)]
    refusing = RefusingWriter(store)

    result = await replay(refusing, all_=True, actor=ME)  # type: ignore[arg-type]

    assert [r.id for r in result.replayed] == letters
    assert refusing.killed == 5
    assert len(await list_dead(store)) == 5
    assert {r.event_id for r in result.replayed} == {d.event_id for d in await list_dead(store)}


class RefusingWriter:
    """A posting store whose writer dead-letters every replayed event again straight away."""

    def __init__(self, store: PostingStore) -> None:
        self._store = store
        self.killed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    async def replay(
        self, ids: Sequence[int], actor: str, reason: str | None, now: datetime
    ) -> list[int]:
        done = await self._store.replay(ids, actor, reason, now)
        for dead_letter_id in done:
            letter = await self._store.get_dead_letter(dead_letter_id)
            assert letter is not None
            [posting] = await self._store.pending(letter.order_key, 1)
            await self._store.dead_letter(letter.order_key, posting.pid, "still refused", now)
            self.killed += 1
        return done


async def test_replay_wants_exactly_one_target_and_an_actor(
    store: PostingStore, seed: Seeder
) -> None:
    dead = await seed.dead("WH/MO/1")
    for kwargs in (
        {},
        {"ids": [dead], "all_": True},
        {"order": "WH/MO/1", "all_": True},
        {"ids": [dead], "order": "WH/MO/1"},
        {"ids": []},
        {"order": ""},
    ):
        with pytest.raises(InvalidRequest):
            await replay(store, actor=ME, **kwargs)
    with pytest.raises(InvalidRequest, match="actor"):
        await replay(store, ids=[dead], actor="   ")
    with pytest.raises(InvalidRequest, match="NUL"):
        await replay(store, ids=[dead], actor=ME, reason="a\x00b")
    assert await ids_of(store) == [dead]
    assert await store.audit_log() == []


async def test_discard_needs_a_reason_and_a_dead_letter(store: PostingStore, seed: Seeder) -> None:
    dead = await seed.dead("WH/MO/1")
    for reason in ("", "  \n"):
        with pytest.raises(InvalidRequest, match="reason"):
            await discard(store, dead, actor=ME, reason=reason)
    with pytest.raises(DeadLetterNotFound, match="no dead letter 999"):
        await discard(store, 999, actor=ME, reason="typo")

    letter = await discard(store, dead, actor=ME, reason=" scanned twice ", now=at(120))

    assert (letter.status, letter.resolution, letter.resolved_by) == (
        "discarded",
        "scanned twice",
        ME,
    )
    assert letter.resolved_at == at(120)
    with pytest.raises(DeadLetterNotDead, match=re.escape(f"{dead} is already discarded by {ME}")):
        await discard(store, dead, actor=ME, reason="again")
    replayed = await seed.dead("WH/MO/2")
    await replay(store, ids=[replayed], actor=ME)
    with pytest.raises(DeadLetterNotDead, match="already replayed"):
        await discard(store, replayed, actor=ME, reason="too late")
    actions = [(e.action, e.dead_letter_id, e.reason) for e in await store.audit_log()]
    assert actions == [("replay", replayed, None), ("discard", dead, "scanned twice")]
    assert await pending_events(store, "mo:WH/MO/1") == []


async def test_dead_letter_dict_is_json_ready(store: PostingStore, seed: Seeder) -> None:
    dead = await seed.dead("WH/MO/1", "Odoo: the MO is cancelled\nTraceback …", attempts=3)
    letter = await store.get_dead_letter(dead)
    assert letter is not None

    shown = json.loads(json.dumps(dead_letter_dict(letter)))

    assert shown == {
        "id": dead,
        "status": "dead",
        "order_key": "mo:WH/MO/1",
        "order": "WH/MO/1",
        "type": "production.reported",
        "event_id": letter.event_id,
        "gateway_id": "line-1",
        "seq": 1,
        "occurred_at": "2025-03-01T08:01:00Z",
        "error": "Odoo: the MO is cancelled\nTraceback …",
        "failed_since": "2025-03-01T09:00:00Z",
        "attempts": 3,
        "dead_at": "2025-03-01T09:03:00Z",
        "resolved_at": None,
        "resolved_by": None,
        "resolution": None,
        "event": json.loads(letter.body),
        "raw_body": None,
    }
    assert shown["event"]["data"]["order"] == "WH/MO/1"


async def test_an_unreadable_event_shows_its_raw_body(store: PostingStore, seed: Seeder) -> None:
    posting = await seed.queue_key("unreadable", b"\xffnot json", type_="unknown")
    dead = await seed.kill(posting.order_key, "not an event", attempts=0)
    letter = await store.get_dead_letter(dead)
    assert letter is not None
    shown = dead_letter_dict(letter)
    assert shown["event"] is None
    assert shown["raw_body"] == "\ufffdnot json"
    assert shown["order"] is None
    assert shown["failed_since"] == shown["dead_at"]


async def test_order_state_dict(store: PostingStore, seed: Seeder) -> None:
    await seed.queue("WH/MO/1")
    await store.park("mo:WH/MO/1", "MO not found", at(65), at(60))
    [state] = await store.parked_orders()
    assert order_state_dict(state) == {
        "key": "mo:WH/MO/1",
        "parked": True,
        "reason": "MO not found",
        "parked_since": "2025-03-01T09:00:00Z",
        "attempts": 1,
        "next_attempt_at": "2025-03-01T09:05:00Z",
        "pending": 1,
        "updated_at": order_state_dict(state)["updated_at"],
    }
