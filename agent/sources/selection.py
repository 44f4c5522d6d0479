"""Which sources the settings run, and which are configured but do not run, with the reason.

A source that is half configured (OPC UA nodes without an endpoint, an MQTT broker without a
subscription) reads nothing; the agent says so at start and on the health page rather than
staying silent about it. The kinds and their reasons come from the source registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.sources import registry


@dataclass(frozen=True, slots=True)
class SourceSelection:
    """The sources that run, and for each configured one that does not, why."""

    running: tuple[str, ...]
    disabled: dict[str, str] = field(default_factory=dict)


def select_sources(settings: Any) -> SourceSelection:
    """Sort the sources of ``settings`` (one attribute per kind) into running and disabled;
    a kind whose section sets nothing is neither."""
    running: list[str] = []
    disabled: dict[str, str] = {}
    for plan in registry.plan(settings):
        if plan.enabled:
            running.append(plan.kind.name)
        elif plan.config.model_fields_set and plan.disabled_because is not None:
            disabled[plan.kind.name] = plan.disabled_because
    return SourceSelection(tuple(running), disabled)
