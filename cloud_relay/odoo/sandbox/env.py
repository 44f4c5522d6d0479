"""The environment a call runs in: database, model registry, Odoo version, user and context.

As in Odoo, ``env[model]`` gives a model bound to this environment; ``sudo()`` skips access
rights and ``with_context()`` adds context keys. Derived state (move, work order and MO
states) is recomputed by ``flush()``, which every read and search runs first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cloud_relay.odoo.sandbox.fields import DATETIME_FORMAT
from cloud_relay.odoo.sandbox.security import (
    FEATURE_GROUPS,
    USER,
    effective_groups,
    feature_key,
)

if TYPE_CHECKING:
    from cloud_relay.odoo.sandbox.db import Database
    from cloud_relay.odoo.sandbox.orm import Model
    from cloud_relay.odoo.sandbox.registry import Registry

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current UTC time without tzinfo, to the second (Odoo's datetime precision)."""
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class Pending:
    """Records whose derived fields must be recomputed before the next read (per call)."""

    dirty: dict[str, set[int]] = field(default_factory=dict)
    flushing: bool = False


class Env:
    """Database, registry and version, seen as user ``uid`` with ``context``."""

    def __init__(
        self,
        db: Database,
        registry: Registry,
        uid: int,
        context: Mapping[str, Any] | None = None,
        *,
        su: bool = False,
        clock: Clock = utc_now,
        pending: Pending | None = None,
    ) -> None:
        self.db = db
        self.registry = registry
        self.version = registry.version
        self.uid = uid
        self.context: dict[str, Any] = dict(context or {})
        self.su = su
        self.clock = clock
        self.pending = pending if pending is not None else Pending()

    def __getitem__(self, model: str) -> Model:
        return self.registry.model_class(model)(self)

    def __contains__(self, model: str) -> bool:
        return self.registry.has_model(model)

    def _derive(self, context: Mapping[str, Any], su: bool) -> Env:
        return Env(
            self.db,
            self.registry,
            self.uid,
            context,
            su=su,
            clock=self.clock,
            pending=self.pending,
        )

    def sudo(self) -> Env:
        """The same environment with access rights skipped."""
        return self._derive(self.context, True)

    def with_context(self, **values: Any) -> Env:
        """The same environment with context keys added or replaced."""
        return self._derive({**self.context, **values}, self.su)

    def now(self) -> str:
        """The server clock, in Odoo's datetime format."""
        return self.clock().strftime(DATETIME_FORMAT)

    def groups(self) -> frozenset[str]:
        """External ids of the user's groups, implied groups included."""
        row = self.db.get("res.users", self.uid)
        if row is None:
            return frozenset()
        direct = {
            xmlid
            for xmlid, group_id in self.registry.group_ids.items()
            if group_id in row.get(self.registry.groups_field, [])
        }
        company = self.db.get("res.company", 1) or {}
        if USER in effective_groups(frozenset(direct)):
            direct |= {xmlid for xmlid in FEATURE_GROUPS if company.get(feature_key(xmlid))}
        return effective_groups(frozenset(direct))

    def has_group(self, xmlid: str) -> bool:
        """Whether the user is in the group (directly or by implication)."""
        return xmlid in self.groups()

    def mark_dirty(self, model: str, ids: set[int] | list[int]) -> None:
        """Queue records whose derived fields must be recomputed."""
        if ids:
            self.pending.dirty.setdefault(model, set()).update(ids)

    def flush(self) -> None:
        """Recompute derived fields of every queued record, in dependency order."""
        if self.pending.flushing:
            return
        self.pending.flushing = True
        try:
            for _ in range(10):
                if not any(self.pending.dirty.values()):
                    break
                for model in self.registry.recompute_order:
                    ids = self.pending.dirty.pop(model, set())
                    live = [i for i in sorted(ids) if self.db.exists(model, i)]
                    if live:
                        self.sudo()[model].recompute(live)
        finally:
            self.pending.flushing = False
