"""The uploader against a relay that fails, refuses, hangs, drops or answers unexpectedly."""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.queue.store import QueueStore
from agent.uploader import uploader as uploader_module
from agent.uploader.uploader import Uploader
from tests.agent.uploader.harness import (
    GATEWAY_ID,
    fill,
    new_event,
    relay_config,
    running,
    wait_until,
)
from tests.fixtures.receiver import Fault, Receiver
from wire.keys import generate_private_key, key_id


def stored_once_in_order(receiver: Receiver, count: int) -> None:
    ids = receiver.stored_ids(GATEWAY_ID)
    assert len(ids) == count and None not in ids and len(set(ids)) == count
    assert not receiver.id_mismatches


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_server_errors_are_retried_without_loss(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey, status: int
) -> None:
    await fill(queue, 50)
    receiver.fail_next(Fault.answer(status, "inbox unavailable"), times=3)
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 50, "all 50 are acked")
    assert receiver.statuses()[:4] == [status, status, status, 200]
    stored_once_in_order(receiver, 50)
    assert receiver.duplicates == 0
    stats = uploader.stats()
    assert stats.retries == 3 and stats.alarm is None
    assert stats.last_error == f"relay cannot take uploads now ({status}): inbox unavailable"
    assert stats.last_error_at is not None and stats.last_success_at is not None
    assert stats.last_success_at > stats.last_error_at
    assert queue.stats().pending == 0


@pytest.mark.parametrize("after_store", [False, True], ids=["before-store", "after-store"])
async def test_dropped_connections_are_retried_and_never_stored_twice(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey, after_store: bool
) -> None:
    await fill(queue, 30)
    receiver.fail_next(Fault.drop(after_store=after_store), times=2)
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 30, "all 30 are acked")
    stored_once_in_order(receiver, 30)
    # Stored but unanswered: the relay gets the same batch again and acknowledges it again.
    assert receiver.duplicates == (20 if after_store else 0)
    assert uploader.stats().retries == 2
    assert "dropped the connection" in (uploader.stats().last_error or "")


@pytest.mark.parametrize("after_store", [False, True], ids=["before-store", "after-store"])
async def test_unanswered_requests_time_out_and_are_retried(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey, after_store: bool
) -> None:
    await fill(queue, 20)
    receiver.fail_next(Fault.hang(after_store=after_store))
    config = relay_config(receiver, batch_max_events=10, timeout_seconds=0.3)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 20, "all 20 are acked")
    stored_once_in_order(receiver, 20)
    assert receiver.duplicates == (10 if after_store else 0)
    assert uploader.stats().retries == 1
    assert "did not answer within 0.3 s" in (uploader.stats().last_error or "")


async def test_failures_are_logged_once_per_outage_not_per_retry(
    queue: QueueStore,
    receiver: Receiver,
    private_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await fill(queue, 10)
    receiver.fail_next(Fault.answer(500), times=6)
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    with caplog.at_level(logging.DEBUG, logger="agent.uploader"):
        async with running(uploader):
            await wait_until(lambda: uploader.stats().acked_seq == 10, "all 10 are acked")
    records = [r for r in caplog.records if r.name.startswith("agent.uploader")]
    warnings = [r for r in records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "(500)" in warnings[0].getMessage()
    assert [r.getMessage() for r in records if r.levelno == logging.INFO][-1] == (
        "relay accepts uploads again after 6 failed attempts"
    )


async def test_bad_signature_raises_an_alarm_and_deletes_nothing(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 20)
    receiver.fail_always(Fault.answer(401, "signature created 900 s ago"))
    config = relay_config(receiver, backoff_initial_seconds=0.01, backoff_max_seconds=0.04)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().retries >= 5, "it has retried 5 times")
        stats = uploader.stats()
        assert stats.alarm == "relay rejected our signature (401): signature created 900 s ago"
        assert stats.backoff_seconds <= 0.04
        assert queue.stats().pending == 20 and queue.stats().acked_seq == 0
        assert receiver.acked(GATEWAY_ID) == 0

        receiver.fail_always(None)
        await wait_until(lambda: uploader.stats().acked_seq == 20, "all 20 are acked")
    assert uploader.stats().alarm is None
    stored_once_in_order(receiver, 20)


async def test_unknown_key_raises_an_alarm_until_the_key_is_registered(
    queue: QueueStore, receiver: Receiver
) -> None:
    await fill(queue, 20)
    stranger = generate_private_key()
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, stranger)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().retries >= 3, "it has retried 3 times")
        alarm = uploader.stats().alarm or ""
        assert alarm.startswith("relay refused our key (403): ")
        assert key_id(stranger.public_key()) in alarm
        assert queue.stats().pending == 20

        receiver.register(GATEWAY_ID, stranger.public_key())
        await wait_until(lambda: uploader.stats().acked_seq == 20, "all 20 are acked")
    assert uploader.stats().alarm is None
    stored_once_in_order(receiver, 20)


async def test_invalid_batch_raises_an_alarm_naming_the_relays_message(
    queue: QueueStore,
    receiver: Receiver,
    private_key: Ed25519PrivateKey,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await fill(queue, 5)
    receiver.fail_always(Fault.answer(422, "/events/0/data/qty: Input should be greater than 0"))
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    with caplog.at_level(logging.ERROR, logger="agent.uploader"):
        async with running(uploader):
            await wait_until(lambda: uploader.stats().retries >= 4, "it has retried 4 times")
            assert uploader.stats().alarm == (
                "relay refused batch 1..5 as invalid (422): "
                "/events/0/data/qty: Input should be greater than 0"
            )
            assert queue.stats().pending == 5
            receiver.fail_always(None)
            await wait_until(lambda: uploader.stats().acked_seq == 5, "all 5 are acked")
    assert uploader.stats().alarm is None
    assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1


async def test_too_large_halves_the_batch_until_the_relay_takes_it(
    queue: QueueStore, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 30)
    async with Receiver(max_events=4) as receiver:
        receiver.register(GATEWAY_ID, private_key.public_key())
        config = relay_config(receiver, batch_max_events=20)
        uploader = Uploader(config, queue, GATEWAY_ID, private_key)
        async with running(uploader):
            await wait_until(lambda: uploader.stats().acked_seq == 30, "all 30 are acked")
    assert [(r.status, r.count) for r in receiver.requests[:4]] == [
        (413, 20),
        (413, 10),
        (413, 5),
        (200, 2),
    ]
    assert all(r.count == 2 for r in receiver.requests[3:])
    stats = uploader.stats()
    assert stats.batch_max_events == 2 and stats.alarm is None and stats.retries == 3
    stored_once_in_order(receiver, 30)
    assert receiver.duplicates == 0


async def test_batch_size_grows_back_after_successes(
    queue: QueueStore, private_key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(uploader_module, "REGROW_AFTER_SUCCESSES", 2)
    await fill(queue, 12)
    async with Receiver(max_events=4) as receiver:
        receiver.register(GATEWAY_ID, private_key.public_key())
        uploader = Uploader(
            relay_config(receiver, batch_max_events=20), queue, GATEWAY_ID, private_key
        )
        async with running(uploader):
            await wait_until(lambda: uploader.stats().acked_seq == 12, "all 12 are acked")
            receiver.max_events = None  # the relay's limit is lifted
            await fill(queue, 200)
            await wait_until(lambda: uploader.stats().acked_seq == 212, "all 212 are acked")
    # 12 -> 6 -> 3 by 413s; after 2 accepted batches 6 is tried again, refused, back to 3;
    # once the limit is lifted the size doubles after every 2 accepted batches, up to 20.
    assert [(r.status, r.count) for r in receiver.requests[:7]] == [
        (413, 12),
        (413, 6),
        (200, 3),
        (200, 3),
        (413, 6),
        (200, 3),
        (200, 3),
    ]
    counts = [r.count for r in receiver.requests[7:]]
    assert counts[:6] == [6, 6, 12, 12, 20, 20]
    assert uploader.stats().batch_max_events == 20


async def test_too_large_single_event_raises_an_alarm(
    queue: QueueStore, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 3)
    async with Receiver(max_events=0) as receiver:
        receiver.register(GATEWAY_ID, private_key.public_key())
        uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
        async with running(uploader):
            await wait_until(lambda: uploader.stats().alarm is not None, "the alarm is raised")
    assert [r.count for r in receiver.requests[:2]] == [3, 1]
    assert "cannot be split further" in (uploader.stats().alarm or "")
    assert queue.stats().pending == 3


async def test_retry_after_is_honoured(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 5)
    receiver.fail_next(Fault.answer(503, "inbox full", retry_after="1"))
    config = relay_config(receiver, backoff_initial_seconds=0.01, backoff_max_seconds=30)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    seen: set[float] = set()
    async with running(uploader):

        def done() -> bool:
            seen.add(uploader.stats().backoff_seconds)
            return uploader.stats().acked_seq == 5

        await wait_until(done, "all 5 are acked")
    # The jittered backoff alone would have waited at most 0.01 s.
    assert max(seen) == 1.0
    assert receiver.statuses() == [503, 200]


async def test_retry_after_is_capped_by_backoff_max(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 5)
    receiver.fail_next(Fault.answer(503, retry_after="3600"))
    config = relay_config(receiver, backoff_initial_seconds=0.01, backoff_max_seconds=0.2)
    uploader = Uploader(config, queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().backoff_seconds > 0, "it backs off")
        assert uploader.stats().backoff_seconds == 0.2
        await wait_until(lambda: uploader.stats().acked_seq == 5, "all 5 are acked")


async def test_partial_ack_resends_from_the_relays_point(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 25)
    receiver.fail_next(Fault.partial(3))
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 25, "all 25 are acked")
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [
        (1, 10),
        (4, 13),
        (14, 23),
        (24, 25),
    ]
    stored_once_in_order(receiver, 25)
    assert uploader.stats().retries == 0


async def test_ack_without_progress_backs_off_and_retries(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 10)
    receiver.fail_next(Fault.partial(0), times=2)
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 10, "all 10 are acked")
    assert uploader.stats().retries == 2
    assert "stored only through seq 0" in (uploader.stats().last_error or "")
    stored_once_in_order(receiver, 10)


async def test_relay_ahead_of_the_batch_is_believed(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    # The relay stored 1..25 before a crash kept this agent from deleting them.
    await fill(queue, 30)
    receiver.preload(GATEWAY_ID, 25)
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 30, "all 30 are acked")
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [(1, 10), (26, 30)]
    assert receiver.duplicates == 10 and receiver.acked(GATEWAY_ID) == 30
    assert uploader.stats().alarm is None


async def test_conflict_resumes_where_the_relay_expects(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 30)
    receiver.preload(GATEWAY_ID, 15)
    receiver.fail_next(Fault.answer(409, body={"expected_seq": 16}))
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 30, "all 30 are acked")
    assert [(r.status, r.first_seq) for r in receiver.requests] == [
        (409, None),
        (200, 16),
        (200, 26),
    ]
    assert receiver.duplicates == 0 and uploader.stats().alarm is None
    assert queue.stats().pending == 0


async def test_relay_that_lost_acknowledged_events_raises_an_alarm(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 20)
    uploader = Uploader(relay_config(receiver, batch_max_events=10), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 20, "all 20 are acked")
        receiver.forget_after(GATEWAY_ID, 12)  # e.g. restored from an old backup
        await queue.enqueue([new_event(20 + n) for n in range(5)])
        await wait_until(lambda: uploader.stats().retries >= 3, "it has retried 3 times")
        stats = uploader.stats()
        assert stats.alarm is not None
        assert "relay lost events it had acknowledged" in stats.alarm
        assert "seq 13..20" in stats.alarm
        assert stats.relay_acked_seq == 12
        assert queue.stats().pending == 5 and queue.stats().acked_seq == 20

        receiver.preload(GATEWAY_ID, 20)  # an operator tells the relay to skip the loss
        await wait_until(lambda: uploader.stats().acked_seq == 25, "all 25 are acked")
    assert uploader.stats().alarm is None
    assert [r.status for r in receiver.requests[2:]].count(409) >= 3


async def test_relay_claiming_more_than_was_ever_sent_raises_an_alarm(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 10)
    receiver.preload(GATEWAY_ID, 100)
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().alarm is not None, "the alarm is raised")
        assert "relay claims seq 1..100" in (uploader.stats().alarm or "")
        await wait_until(lambda: uploader.stats().acked_seq == 10, "all 10 are acked")
    assert queue.stats().pending == 0


async def test_starts_from_the_queues_acked_point(
    queue: QueueStore, receiver: Receiver, private_key: Ed25519PrivateKey
) -> None:
    await fill(queue, 20)
    await queue.ack_through(12)
    receiver.preload(GATEWAY_ID, 12)
    uploader = Uploader(relay_config(receiver), queue, GATEWAY_ID, private_key)
    async with running(uploader):
        await wait_until(lambda: uploader.stats().acked_seq == 20, "all 20 are acked")
    assert [(r.first_seq, r.last_seq) for r in receiver.requests] == [(13, 20)]
