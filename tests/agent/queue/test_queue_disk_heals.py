"""A queue that filled its disk gives space back as acks drain it, and says so while paused.

On a real 2 MiB tmpfs (skipped where none can be mounted): the files shrink as the backlog is
acknowledged, ingest resumes only past a mark of free space, ``queue-stats`` reads ``full``
from the file while sources are paused, and ``check-config`` warns about a reserve that takes
much of the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.cli import main
from agent.errors import QueueFullError
from agent.queue.diskfull import DEDUPE_KEYS_KEPT_WHEN_FULL
from agent.queue.model import NewEvent
from agent.queue.stats_reader import read_queue_stats

OpenStore = Callable[..., Awaitable[Any]]
MakeEvent = Callable[..., NewEvent]
RESERVE = 256 * 1024


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 2 MiB tmpfs; skipped where mounting is not permitted (needs root)."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _disk_use(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.iterdir() if not p.name.endswith(".reserve"))


async def _fill(store: Any, make_event: MakeEvent) -> list[int]:
    seqs: list[int] = []
    with pytest.raises(QueueFullError, match="storage is full"):
        for i in range(100_000):
            results = await store.enqueue([make_event(i, pad=300) for _ in range(20)])
            seqs += [r.seq for r in results]
    return seqs


async def test_acks_give_the_space_back_and_ingest_resumes_past_a_mark(
    open_store: OpenStore, make_event: MakeEvent, tiny_disk: Path
) -> None:
    path = tiny_disk / "queue.db"
    store = await open_store(path, full_probe_interval_seconds=0.05, disk_reserve_bytes=RESERVE)
    seqs = await _fill(store, make_event)
    assert read_queue_stats(path).full  # read from the file: the marker of a paused queue
    assert (tiny_disk / "queue.db.reserve").exists()  # kept for the acks, not spent on events
    full_use = _disk_use(tiny_disk)
    await store.ack_through(seqs[len(seqs) // 10])  # a little: not enough to resume
    assert store.is_full and read_queue_stats(path).full
    await store.ack_through(seqs[-1])  # everything
    await asyncio.wait_for(store.wait_until_writable(), 10)
    assert _disk_use(tiny_disk) < full_use - RESERVE  # the files shrank: space went back
    assert not read_queue_stats(path).full
    (res,) = await store.enqueue([make_event()])
    assert res.seq == seqs[-1] + 1
    again = await _fill(store, make_event)
    assert again[0] == seqs[-1] + 2 and len(again) > len(seqs) // 2  # the room was reused
    await store.ack_through(again[-1])
    await store.wait_until_writable()


def test_check_config_warns_about_a_reserve_large_against_free_space(
    tmp_path: Path, tiny_disk: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "gw.pem"
    assert main(["keygen", "--out", str(key)]) == 0
    config = tmp_path / "agent.toml"
    for reserve, warned in ((1024 * 1024, True), (64 * 1024, False)):
        config.write_text(
            f'[gateway]\nid = "gw"\nsigning_key_file = "{key}"\nstate_dir = "{tiny_disk}/s"\n'
            f'[health]\nlisten = ""\n[queue]\ndisk_reserve_bytes = {reserve}\n'
        )
        capsys.readouterr()
        assert main(["check-config", "--config", str(config)]) == 0
        err = capsys.readouterr().err
        assert ("warning: [queue] disk_reserve_bytes" in err) is warned, err


async def test_dedupe_keys_that_outgrow_the_disk_give_way_to_new_events(
    open_store: OpenStore, make_event: MakeEvent, tiny_disk: Path
) -> None:
    path = tiny_disk / "queue.db"
    store = await open_store(path, full_probe_interval_seconds=0.05, disk_reserve_bytes=RESERVE)
    seqs: list[int] = []
    with pytest.raises(QueueFullError, match="storage is full"):
        for i in range(100_000):  # keys far bigger than events: they fill the disk
            batch = [make_event(i, dedupe_key=f"{i}-{n}-" + "k" * 300) for n in range(20)]
            seqs += [r.seq for r in await store.enqueue(batch)]
    await store.ack_through(seqs[-1])
    await asyncio.wait_for(store.wait_until_writable(), 20)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (keys,) = db.execute("SELECT COUNT(*) FROM dedupe").fetchone()
    assert keys <= DEDUPE_KEYS_KEPT_WHEN_FULL < len(seqs)
    (dup,) = await store.enqueue([make_event(dedupe_key=f"{len(seqs) // 20 - 1}-19-" + "k" * 300)])
    assert dup.duplicate  # the newest keys are still known
