"""The source kinds the agent knows, found by folder: a new protocol is one package.

Each package under ``agent/sources/`` with a ``kind`` module declares its kind there as
``KIND = SourceKind(...)``: its settings section, how it says it is disabled, how its options
are checked and how it is built. The composition root, ``check-config``, the health page and
``/metrics`` ask this registry instead of naming kinds. ``kind`` modules stay cheap to import:
they import their protocol's client library only inside ``check`` and ``build``.

A kind's settings live in ``AgentSettings`` under the kind's name (``[opcua]``, ``[mqtt]``…).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from agent.queue.store import QueueStore


class Source(Protocol):
    """A running source: reads its protocol until cancelled and reports a stats snapshot.

    ``stats()`` returns a frozen dataclass; the health page reads ``connected``, ``since``,
    ``last_error``, ``alarm``, ``rejected``, ``last_reject`` and the kind's address field when
    present.
    """

    async def run(self) -> None: ...

    def stats(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class SourceKind:
    """One protocol the agent reads."""

    name: str
    """Component name and settings section (``opcua``)."""
    title: str
    """What its health card is called (``OPC UA endpoint``)."""
    disabled: Callable[[Any], str | None]
    """The reason the source does not run with these options, or None when it runs."""
    check: Callable[[Any], None]
    """Refuse (:class:`~agent.errors.ConfigError`) options that can never work."""
    build: Callable[[Any, QueueStore, str], Source]
    """The source for (options, queue, gateway id)."""
    address_field: str = ""
    """The stats field shown beside the title (``endpoint``, ``broker``)."""
    counter_fields: frozenset[str] = field(default_factory=frozenset)
    """Stats fields that only grow: exposed as Prometheus counters."""


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """Whether one kind runs with the given settings, and why not."""

    kind: SourceKind
    config: Any
    disabled_because: str | None

    @property
    def enabled(self) -> bool:
        return self.disabled_because is None


@functools.cache
def kinds() -> tuple[SourceKind, ...]:
    """Every source kind, by name."""
    import agent.sources as package

    found = []
    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{package.__name__}.{info.name}.kind")
        except ModuleNotFoundError as exc:
            if exc.name != f"{package.__name__}.{info.name}.kind":
                raise
            continue
        kind: SourceKind = module.KIND
        found.append(kind)
    return tuple(sorted(found, key=lambda k: k.name))


def find(name: str) -> SourceKind | None:
    """The kind called ``name``, or None (``queue``, ``uploader`` are not sources)."""
    return next((k for k in kinds() if k.name == name), None)


def plan(settings: Any) -> list[SourcePlan]:
    """Each kind with its options from ``settings`` and whether it runs: one call for a summary
    of what runs and what is disabled, and why."""
    plans = []
    for kind in kinds():
        config = getattr(settings, kind.name)
        plans.append(SourcePlan(kind, config, kind.disabled(config)))
    return plans


def counter_fields() -> frozenset[str]:
    """Every kind's ever-growing stats fields."""
    return frozenset().union(*(k.counter_fields for k in kinds()))
