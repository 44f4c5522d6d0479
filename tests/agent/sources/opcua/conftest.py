"""Fixtures for the OPC UA source tests: a test server shared per module, reset for each test."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest_asyncio

from tests.fixtures.opcua_server import OpcuaTestServer, opcua_server

__all__ = ["line_server", "opcua_server"]

#: Bulk tags on the shared server, for tests that need many nodes at once.
BULK_TAGS = 40


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def line_server() -> AsyncIterator[OpcuaTestServer]:
    """One started server per test module (starting one takes about a second)."""
    logging.getLogger("asyncua").setLevel(logging.WARNING)
    server = OpcuaTestServer(bulk_tags=BULK_TAGS)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
