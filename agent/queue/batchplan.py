"""Turning a group of pending enqueue calls into the rows of one transaction.

Pure computation, no I/O: seqs are handed out in call order, and dedupe keys are checked
against the keys already stored and against each other. Bodies were encoded at enqueue
(:mod:`agent.queue.body`); here each only gets its ``seq`` spliced in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Set
from dataclasses import dataclass, field

from agent.queue.body import EncodedEvent
from agent.queue.model import EnqueueResult, NewEvent

_DUPLICATE = EnqueueResult(seq=None, duplicate=True)

EventRow = tuple[int, str, str, float, bytes]
RejectRow = tuple[float, str, str, str, bytes]


@dataclass(slots=True, eq=False)
class Work:
    """One pending call: events (shed or encoded), state, rejects, and its caller."""

    events: list[NewEvent]
    pre: list[EnqueueResult | None]
    encoded: list[EncodedEvent | None]
    state: list[tuple[str, str]]
    rejects: list[RejectRow]
    estimate: int
    future: asyncio.Future[list[EnqueueResult]]
    n_events: int = field(init=False)  # events of this call that get a seq (not shed)

    def __post_init__(self) -> None:
        self.n_events = sum(1 for res in self.pre if res is None)


@dataclass(slots=True)
class Plan:
    """Everything one transaction writes, and what each call gets back once it commits."""

    events: list[EventRow] = field(default_factory=list)
    dedupe: list[tuple[str, int, float]] = field(default_factory=list)
    state: list[tuple[str, str]] = field(default_factory=list)
    rejects: list[RejectRow] = field(default_factory=list)
    results: list[list[EnqueueResult]] = field(default_factory=list)
    next_seq: int = 1
    bytes: int = 0
    duplicates: int = 0
    seq_ceiling: int | None = None


def plan_commit(batch: list[Work], next_seq: int, known_keys: Set[str], now: float) -> Plan:
    """Assign seqs and build rows for ``batch``, starting at ``next_seq``."""
    plan = Plan(next_seq=next_seq)
    seen: set[str] = set()
    for work in batch:
        _plan_work(plan, work, known_keys, seen, now)
    return plan


def _plan_work(
    plan: Plan,
    work: Work,
    known_keys: Set[str],
    seen: set[str],
    now: float,
) -> None:
    """Add one call to ``plan``."""
    seq = plan.next_seq
    rows: list[EventRow] = []
    dedupe: list[tuple[str, int, float]] = []
    keys: set[str] = set()
    results: list[EnqueueResult] = []
    size = 0
    for ev, pre, enc in zip(work.events, work.pre, work.encoded, strict=True):
        if pre is not None or enc is None:
            results.append(pre or _DUPLICATE)
            continue
        key = ev.dedupe_key
        if key is not None:
            if key in known_keys or key in seen or key in keys:
                results.append(_DUPLICATE)
                continue
            keys.add(key)
            dedupe.append((key, seq, now))
        body = enc.body(seq)
        rows.append((seq, enc.id, enc.type, now, body))
        size += len(body)
        results.append(EnqueueResult(seq=seq))
        seq += 1
    plan.events.extend(rows)
    plan.dedupe.extend(dedupe)
    plan.state.extend(work.state)
    plan.rejects.extend(work.rejects)
    plan.results.append(results)
    plan.next_seq = seq
    plan.bytes += size
    plan.duplicates += sum(1 for r in results if r.duplicate)
    seen.update(keys)
