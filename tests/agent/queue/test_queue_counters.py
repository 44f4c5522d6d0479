"""Property: whatever the mix of enqueues, duplicates, acks and restarts, the figures kept in
memory agree with what the file holds, and the file agrees with the read-only stats reader."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.queue.config import QueueConfig
from agent.queue.model import NewEvent
from agent.queue.stats_reader import read_queue_stats
from agent.queue.store import QueueStore

WHEN = datetime(2025, 5, 6, 7, 8, 9, tzinfo=UTC)

enqueue_op = st.tuples(
    st.just("enqueue"),
    st.lists(
        st.tuples(st.integers(0, 300), st.one_of(st.none(), st.sampled_from("abcdefgh"))),
        min_size=0,
        max_size=12,
    ),
)
ack_op = st.tuples(st.just("ack"), st.integers(0, 40))
reopen_op = st.tuples(st.just("reopen"), st.none())
operations = st.lists(st.one_of(enqueue_op, ack_op, reopen_op), min_size=1, max_size=25)


def _event(pad: int, key: str | None) -> NewEvent:
    return NewEvent("signal.sampled", WHEN, "prop", {"name": "x" * (pad + 1), "value": 1.0}, key)


def _file_figures(path: Path) -> tuple[int, int, list[int]]:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        (size,) = conn.execute("SELECT COALESCE(SUM(length(body)), 0) FROM events").fetchone()
        (dupes,) = conn.execute("SELECT value FROM meta WHERE key = 'duplicates_total'").fetchone()
        seqs = [r[0] for r in conn.execute("SELECT seq FROM events ORDER BY seq")]
    return int(size), int(dupes), seqs


async def _run(path: Path, ops: list[tuple[str, object]]) -> None:
    config = QueueConfig(flush_interval_ms=0, dedupe_keys_kept=100)
    store = await QueueStore.open(path, "gw-prop", config)
    expected_next, acked, dupes = 1, 0, 0
    seen_keys: set[str] = set()
    try:
        for op, arg in ops:
            if op == "enqueue":
                assert isinstance(arg, list)
                results = await store.enqueue([_event(pad, key) for pad, key in arg])
                for (_, key), res in zip(arg, results, strict=True):
                    if key is not None and key in seen_keys:
                        assert res.duplicate and res.seq is None
                        dupes += 1
                        continue
                    if key is not None:
                        seen_keys.add(key)
                    assert res.seq == expected_next
                    expected_next += 1
            elif op == "ack":
                assert isinstance(arg, int)
                await store.ack_through(acked + arg)
                acked = min(acked + arg, expected_next - 1)
            else:
                await store.close()
                store = await QueueStore.open(path, "gw-prop", config)
            stats = store.stats()
            size, file_dupes, seqs = _file_figures(path)
            assert seqs == list(range(acked + 1, expected_next))
            assert stats.pending == len(seqs)
            assert stats.bytes == size
            assert stats.acked_seq == acked
            assert stats.duplicates == dupes == file_dupes
            assert stats.first_seq == (seqs[0] if seqs else None)
            assert stats.last_seq == (seqs[-1] if seqs else None)
            outside = read_queue_stats(path)
            assert (outside.pending, outside.bytes, outside.acked_seq) == (
                stats.pending,
                stats.bytes,
                stats.acked_seq,
            )
    finally:
        await store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations)
def test_figures_in_memory_match_the_file(ops: list[tuple[str, object]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_run(Path(tmp) / "queue.db", ops))
