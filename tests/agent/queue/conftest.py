"""Fixtures for the queue tests: real SQLite files in ``tmp_path``, opened and always closed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.queue.config import QueueConfig
from agent.queue.model import NewEvent
from agent.queue.store import QueueStore

GATEWAY = "gw-test"

OpenStore = Callable[..., Awaitable[QueueStore]]
MakeEvent = Callable[..., NewEvent]


@pytest.fixture
def queue_path(tmp_path: Path) -> Path:
    return tmp_path / "queue.db"


@pytest.fixture
async def open_store(queue_path: Path) -> AsyncIterator[OpenStore]:
    """Open a store (default: this test's path and gateway); every one is closed at the end."""
    opened: list[QueueStore] = []

    async def _open(
        path: Path | None = None, gateway_id: str = GATEWAY, **options: Any
    ) -> QueueStore:
        options.setdefault("flush_interval_ms", 1.0)
        store = await QueueStore.open(path or queue_path, gateway_id, QueueConfig(**options))
        opened.append(store)
        return store

    yield _open
    for store in opened:
        await store.close()


@pytest.fixture
def make_event() -> MakeEvent:
    """A valid NewEvent; ``kind="telemetry"`` for signal.sampled."""

    def _make(
        n: int = 1, *, kind: str = "stock", dedupe_key: str | None = None, pad: int = 0
    ) -> NewEvent:
        if kind == "telemetry":
            return NewEvent(
                "signal.sampled",
                datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
                "opcua:ns=2;s=Temp",
                {"name": "temp", "value": float(n), "unit": "degC" + "x" * pad},
                dedupe_key,
            )
        return NewEvent(
            "production.reported",
            datetime(2025, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
            "mqtt:plant/line1/press/produced",
            {"order": f"WH/MO/{n:05d}", "qty": 1.0, "lot": "L" + "x" * pad},
            dedupe_key,
        )

    return _make
