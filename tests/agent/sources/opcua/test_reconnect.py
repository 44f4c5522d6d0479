"""The OPC UA source across server outages: it reconnects by itself and counts nothing twice."""

from __future__ import annotations

from pathlib import Path

from tests.agent.sources.opcua.harness import (
    make_config,
    node,
    quantities,
    running_source,
    wait_until,
)
from tests.fixtures.opcua_server import OpcuaTestServer

NODES = [
    node("good", "good", "counter", event="production.reported"),
    node("machine", "state", "state", states={"1": "operation.started"}, operation="Assembly"),
]


async def test_reconnects_after_server_restart_on_same_port(
    opcua_server: OpcuaTestServer, tmp_path: Path
) -> None:
    await opcua_server.write("order", "MO/0100")
    config = make_config(opcua_server.endpoint, NODES)
    async with running_source(opcua_server, tmp_path, config) as run:
        await run.wait_connected()
        await run.wait_settled(4)
        await opcua_server.write("good", 5)
        await opcua_server.write("state", 1)
        await run.wait_events(2)
        index_before = await opcua_server.namespace_index()

        await opcua_server.stop()
        await wait_until(lambda: not run.stats().connected, "the loss is noticed")
        assert run.stats().last_error

        # The restarted server lists more namespaces first: the line's index moves.
        await opcua_server.start(extra_namespaces=2)
        assert await opcua_server.namespace_index() != index_before
        await run.wait_connected(sessions=2)
        await run.wait_settled(8)  # both sessions' order reads and initial values
        events = await run.events()
        assert quantities(events) == [5]  # the repeated 5 is a baseline, not production
        assert len(events) == 2  # and the repeated state is not a new start

        await opcua_server.write("good", 9)
        events = await run.wait_events(3)
        assert quantities(events) == [5, 4]
        assert run.stats().reconnects == 1


async def test_connects_once_the_server_comes_up(tmp_path: Path) -> None:
    server = OpcuaTestServer()  # not started yet
    config = make_config(server.endpoint, NODES, order={"value": "MO/0101"})
    try:
        async with running_source(server, tmp_path, config) as run:
            await wait_until(lambda: run.stats().last_error is not None, "a failed attempt")
            assert not run.stats().connected
            await server.start()
            await run.wait_connected()
            await run.wait_settled(2)
            await server.write("good", 2)
            assert quantities(await run.wait_events(1)) == [2]
            assert run.stats().reconnects == 0
    finally:
        await server.stop()
