"""Reading Odoo in batches for a reconcile run, counting every call.

A run never reads per record: ids go in ``search_read`` with ``["id", "in", chunk]`` (or another
field ``in`` a chunk), ``BATCH`` at a time, so 1,000 orders cost a handful of calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from cloud_relay.odoo.client import OdooClient

BATCH = 500


class CountingReader:
    """``search_read`` through one client, in chunks, with the calls counted per model."""

    def __init__(self, client: OdooClient, batch: int = BATCH) -> None:
        self._client = client
        self._batch = batch
        self.calls: Counter[str] = Counter()

    @property
    def version(self) -> int:
        return self._client.version

    async def search_read(
        self, model: str, domain: list[Any], fields: Sequence[str]
    ) -> list[dict[str, Any]]:
        """One ``search_read`` (counted)."""
        self.calls[f"{model}.search_read"] += 1
        return await self._client.search_read(model, domain, list(fields), order="id")

    async def where_in(
        self,
        model: str,
        name: str,
        values: Iterable[Any],
        fields: Sequence[str],
        extra: Sequence[Any] = (),
    ) -> list[dict[str, Any]]:
        """Records whose ``name`` is among ``values``, in chunks of the batch size."""
        wanted = sorted(set(values))
        rows: list[dict[str, Any]] = []
        for start in range(0, len(wanted), self._batch):
            chunk = wanted[start : start + self._batch]
            rows.extend(await self.search_read(model, [[name, "in", chunk], *extra], fields))
        return rows

    def total_calls(self) -> int:
        """Every call made so far."""
        return sum(self.calls.values())
