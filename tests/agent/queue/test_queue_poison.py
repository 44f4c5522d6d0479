"""One item that cannot be stored never fails the commit of the others beside it.

Strings with a lone UTF-16 surrogate have no UTF-8 form: SQLite cannot bind them and the relay
could not read them. They are refused per event before the group commit; an item that fails the
commit anyway is isolated and the rest of its group is committed without it. Rejects are kept
with their text escaped, so a reason quoting such a string is kept (and readable) too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from agent.errors import RejectedError
from agent.queue.model import NewEvent

OpenStore = Callable[..., Awaitable[Any]]
MakeEvent = Callable[..., NewEvent]


def _event(order: str, key: str | None = None) -> NewEvent:
    return NewEvent(
        "production.reported",
        datetime(2025, 1, 2, tzinfo=UTC),
        "mqtt:plant/l1/produced",
        {"order": order, "qty": 1.0},
        key,
    )


async def test_a_surrogate_in_a_dedupe_key_or_field_is_refused_per_event(
    open_store: OpenStore,
) -> None:
    store = await open_store(flush_interval_ms=50.0)  # so the calls below share one commit
    calls = [
        store.enqueue([_event("WH/MO/1", "k1")]),
        store.enqueue([_event("WH/MO/2", "k\ud800")]),
        store.enqueue([_event("WH/MO/\udc00", "k3")]),
        store.enqueue([_event("WH/MO/4", "k4")]),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert [r[0].seq for r in results if isinstance(r, list)] == [1, 2]
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 2 and all(isinstance(e, RejectedError) for e in errors), errors
    assert "dedupe_key" in str(errors[0]) and "surrogate" in str(errors[0])
    assert "surrogate" in str(errors[1])
    str(errors[0]).encode("utf-8")  # the reason itself is printable
    assert store.stats().last_error is None


async def test_isolated_rejects_queue_the_rest_of_the_call(open_store: OpenStore) -> None:
    store = await open_store()
    events = [_event("WH/MO/1", "a"), _event("WH/MO/2", "b\ud800"), _event("WH/MO/3", "c")]
    results = await store.enqueue(events, isolate_rejects=True)
    assert [r.seq for r in results] == [1, None, 2]
    assert results[1].rejected is not None and "surrogate" in results[1].rejected
    assert [e.seq for e in await store.read_batch(0, 10, 1 << 20)] == [1, 2]


async def test_an_item_failing_the_group_commit_is_isolated(open_store: OpenStore) -> None:
    store = await open_store(flush_interval_ms=50.0)
    unhashable: Any = ["not", "a", "key"]  # passes the checks before the commit, fails in it
    calls = [
        store.enqueue([_event("WH/MO/1", "k1")]),
        store.enqueue([_event("WH/MO/2", unhashable)]),
        store.enqueue([_event("WH/MO/3", "k3")]),
        store.record_reject("mqtt", "t", "r", b"p"),
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(results[1], RejectedError), results
    assert "cannot be stored" in str(results[1])
    assert [r[0].seq for r in (results[0], results[2])] == [1, 2]  # type: ignore[index]
    assert len(await store.recent_rejects()) == 1
    (again,) = await store.enqueue([_event("WH/MO/4", "k4")])
    assert again.seq == 3  # gapless after the isolated failure


async def test_rejects_with_unencodable_text_are_kept_escaped_with_their_neighbours(
    open_store: OpenStore,
) -> None:
    store = await open_store(flush_interval_ms=50.0)
    await asyncio.gather(
        store.record_reject("mqtt", "plant/a", "first", b"1"),
        store.record_reject("mqtt\udfff", "plant/\ud800", 'dedupe_key: "\ud800" is bad', b"2"),
        store.record_reject("mqtt", "plant/c", "third", b"3"),
    )
    rejects = await store.recent_rejects()
    assert [r.payload for r in rejects] == [b"3", b"2", b"1"]
    odd = rejects[1]
    assert (odd.source, odd.where) == ("mqtt\\udfff", "plant/\\ud800")
    assert odd.reason == 'dedupe_key: "\\ud800" is bad'
    assert store.stats().rejected == 3


@pytest.mark.parametrize("state", [{"k": "v\ud800"}, {"k\udc00": "v"}], ids=["value", "key"])
async def test_unencodable_state_is_refused_before_the_commit(
    open_store: OpenStore, state: dict[str, str]
) -> None:
    store = await open_store(flush_interval_ms=50.0)
    good = store.enqueue([_event("WH/MO/1")], {"ok": "1"})
    bad = store.enqueue([_event("WH/MO/2")], state)
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert isinstance(results[1], RejectedError)
    assert results[0][0].seq == 1  # type: ignore[index]
    assert await store.get_state("ok") == "1"
