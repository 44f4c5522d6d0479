"""Enqueue forever from several producers; print ``producer seq`` once each enqueue returned.

Run by the kill -9 test: ``python enqueue_loop.py QUEUE_PATH DURABILITY PRODUCERS``. Each call
also writes the state key ``count-<producer>`` (events that producer has queued) in the same
transaction, so the test can check that state and events are committed together.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from datetime import UTC, datetime
from pathlib import Path

from agent.queue.config import QueueConfig
from agent.queue.model import NewEvent
from agent.queue.store import QueueStore

GATEWAY = "gw-kill"


async def _produce(store: QueueStore, producer: int) -> None:
    rnd = random.Random(producer)
    done = int(await store.get_state(f"count-{producer}") or 0)  # resume like a source would
    while True:
        n = rnd.randint(1, 5)
        events = [
            NewEvent(
                "production.reported",
                datetime.now(UTC),
                f"loop:{producer}",
                {"order": f"P{producer}", "qty": float(done + i + 1)},
            )
            for i in range(n)
        ]
        done += n
        results = await store.enqueue(events, {f"count-{producer}": str(done)})
        os.write(1, "".join(f"{producer} {r.seq}\n" for r in results).encode())


async def _main(path: Path, durability: str, producers: int) -> None:
    config = QueueConfig(durability=durability, flush_interval_ms=1.0)  # type: ignore[arg-type]
    store = await QueueStore.open(path, GATEWAY, config)
    os.write(1, b"ready\n")
    await asyncio.gather(*(_produce(store, k) for k in range(producers)))


if __name__ == "__main__":
    asyncio.run(_main(Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])))
