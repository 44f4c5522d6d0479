"""A simulated production line: an OPC UA server whose counters move as a real line's would.

It keeps its own tally of what it made per order, so the demo can compare the line's truth with
what reached the far end.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass, field

from asyncua import ua
from asyncua.server.server import Server

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:plant-link:demo:line1"


@dataclass
class LineTally:
    """What the line made, per order: the truth the far end must match."""

    good: Counter[str] = field(default_factory=Counter)
    scrap: Counter[str] = field(default_factory=Counter)
    consumed: Counter[str] = field(default_factory=Counter)
    orders: list[str] = field(default_factory=list)


class SimulatedLine:
    """An asyncua server with GoodParts, ScrapParts, Running, CurrentOrder and Temperature."""

    def __init__(self, port: int, orders: list[str], *, seed: int | None = None) -> None:
        self.endpoint = f"opc.tcp://127.0.0.1:{port}/line1/"
        self.orders = orders
        self.tally = LineTally()
        self._random = random.Random(seed)
        self._server = Server()
        self._good_total = 0
        self._scrap_total = 0

    async def start(self) -> None:
        server = self._server
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("plant-link demo line")
        # An open, anonymous line on loopback: offering no secured endpoints or password logins
        # keeps asyncua from warning, every run, that it has no certificate to secure them.
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        server.set_identity_tokens([ua.AnonymousIdentityToken])
        idx = await server.register_namespace(NAMESPACE_URI)
        line = await server.nodes.objects.add_object(f"ns={idx};s=Line1", "Line1")
        self._good = await line.add_variable(
            f"ns={idx};s=Line1.GoodParts", "GoodParts", ua.Variant(0, ua.VariantType.UInt32)
        )
        self._scrap = await line.add_variable(
            f"ns={idx};s=Line1.ScrapParts", "ScrapParts", ua.Variant(0, ua.VariantType.UInt32)
        )
        self._running = await line.add_variable(
            f"ns={idx};s=Line1.Running", "Running", ua.Variant(False, ua.VariantType.Boolean)
        )
        self._order = await line.add_variable(
            f"ns={idx};s=Line1.CurrentOrder",
            "CurrentOrder",
            ua.Variant("", ua.VariantType.String),
        )
        self._temperature = await line.add_variable(
            f"ns={idx};s=Line1.Temperature",
            "Temperature",
            ua.Variant(21.0, ua.VariantType.Double),
        )
        await server.start()

    async def stop(self) -> None:
        await self._server.stop()

    async def run(
        self, stop: asyncio.Event, *, tick_seconds: float = 0.05, parts_per_order: int = 200
    ) -> None:
        """Make parts order after order until ``stop`` is set; orders change only while stopped."""
        rnd = self._random
        for order in self.orders:
            if stop.is_set():
                break
            await self._set_order(order)
            await self._write(self._running, True, ua.VariantType.Boolean)
            made = 0
            while made < parts_per_order and not stop.is_set():
                good = rnd.choice((0, 1, 1, 2))
                scrap = 1 if rnd.random() < 0.05 else 0
                if good:
                    self._good_total += good
                    self.tally.good[order] += good
                    made += good
                    await self._write(self._good, self._good_total, ua.VariantType.UInt32)
                if scrap:
                    self._scrap_total += scrap
                    self.tally.scrap[order] += scrap
                    await self._write(self._scrap, self._scrap_total, ua.VariantType.UInt32)
                temperature = 60.0 + rnd.uniform(-2, 2)
                await self._write(self._temperature, temperature, ua.VariantType.Double)
                await asyncio.sleep(tick_seconds)
            await self._write(self._running, False, ua.VariantType.Boolean)
            # A line changes over between orders: the counters rest while the order changes.
            await asyncio.sleep(0.5)

    async def _set_order(self, order: str) -> None:
        self.tally.orders.append(order)
        await self._write(self._order, order, ua.VariantType.String)
        await asyncio.sleep(0.5)

    @staticmethod
    async def _write(node: object, value: object, kind: ua.VariantType) -> None:
        await node.write_value(ua.DataValue(ua.Variant(value, kind)))  # type: ignore[attr-defined]
