"""Fixtures for the uploader: a real queue file, a real relay stand-in on loopback, a key."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.queue.config import QueueConfig
from agent.queue.store import QueueStore
from tests.agent.uploader.harness import GATEWAY_ID
from tests.fixtures.receiver import Receiver
from wire.keys import generate_private_key


@pytest.fixture
def private_key() -> Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture
async def receiver(private_key: Ed25519PrivateKey) -> AsyncIterator[Receiver]:
    rx = Receiver()
    rx.register(GATEWAY_ID, private_key.public_key())
    async with rx:
        yield rx


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[QueueStore]:
    store = await QueueStore.open(
        tmp_path / "queue.db", GATEWAY_ID, QueueConfig(durability="process")
    )
    try:
        yield store
    finally:
        await store.close()
