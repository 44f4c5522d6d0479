"""A minimal agent process for crash tests: a QueueStore and an Uploader, until the queue is empty.

    python -m tests.agent.uploader.drain_agent QUEUE GATEWAY_ID KEY_PEM RELAY_URL BATCH_MAX_EVENTS

Exits 0 once every queued event is acknowledged; meant to be killed with SIGKILL before that.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from pathlib import Path

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from agent.uploader.config import RelayConfig
from agent.uploader.uploader import Uploader
from wire.keys import load_private_key


async def drain(
    queue_path: Path, gateway_id: str, key_path: Path, url: str, batch_max_events: int
) -> None:
    """Upload until the queue is empty."""
    queue = await QueueStore.open(queue_path, gateway_id, QueueConfig())
    try:
        config = RelayConfig(
            url=url,
            batch_max_events=batch_max_events,
            batch_max_age_ms=0,
            backoff_initial_seconds=0.01,
            backoff_max_seconds=0.1,
        )
        uploader = Uploader(config, queue, gateway_id, load_private_key(key_path))
        task = asyncio.create_task(uploader.run())
        try:
            # Polling: the queue offers no waiter for "empty", and this process only tests.
            while queue.stats().pending > 0 and not task.done():  # noqa: ASYNC110
                await asyncio.sleep(0.01)
            if task.done():
                task.result()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await queue.close()


def main(argv: list[str]) -> int:
    """Parse the positional arguments and drain."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    queue_path, gateway_id, key_path, url, batch = argv
    asyncio.run(drain(Path(queue_path), gateway_id, Path(key_path), url, int(batch)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
