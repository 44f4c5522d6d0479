"""Fault injection and call counting for the sandbox (a test and benchmark aid, not Odoo).

A rule matches calls by model and method (``common`` is the model of ``common.*`` calls) and
fires for its next ``times`` matching calls, or until cleared:

- ``http_status``: answer that HTTP status (a 5xx from a proxy, say) without running the call;
- ``serialization_failure``: the call's first ``conflicts`` tries hit a concurrent update; the
  server retries as Odoo does (up to 5 tries, rolling back each), so 5 or more conflicts reach
  the client as ``psycopg2.errors.SerializationFailure`` and fewer only cost latency;
- ``delay``: wait ``delay_seconds`` before answering;
- ``odoo_error``: fail with an Odoo error of the given class path and message;
- ``refuse_connections``: stop listening for ``seconds`` (needs the sandbox server).
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_TRIES = 5
"""Odoo's ``MAX_TRIES_ON_CONCURRENCY_FAILURE``."""

FaultKind = Literal[
    "http_status", "serialization_failure", "delay", "odoo_error", "refuse_connections"
]


class FaultRule(BaseModel):
    """One injected fault, as posted to ``POST /sandbox/faults``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: FaultKind
    model: str | None = None
    """Only calls on this model (``common`` for the common service); None matches any."""
    method: str | None = None
    """Only calls of this method; None matches any."""
    times: int | None = Field(default=None, ge=1)
    """How many matching calls the rule fires for; None: until the rules are cleared."""
    status: int = Field(default=503, ge=400, le=599)
    """``http_status``: the status answered."""
    delay_seconds: float = Field(default=0.0, ge=0.0, le=600.0)
    """``delay``: the wait before answering."""
    conflicts: int = Field(default=MAX_TRIES, ge=1)
    """``serialization_failure``: tries of one call that conflict."""
    error_name: str = "odoo.exceptions.UserError"
    """``odoo_error``: the class path in ``error.data.name``."""
    error_message: str = "Injected by the sandbox"
    """``odoo_error``: the message."""
    seconds: float = Field(default=1.0, gt=0.0, le=3600.0)
    """``refuse_connections``: how long the sandbox stops listening."""

    def matches(self, model: str, method: str) -> bool:
        """Whether a call of ``model.method`` is concerned."""
        return (self.model is None or self.model == model) and (
            self.method is None or self.method == method
        )


@dataclass
class _Active:
    rule_id: int
    rule: FaultRule
    remaining: int | None


@dataclass(frozen=True)
class FaultStats:
    """What the injector did: calls seen, faults fired, rules still armed."""

    calls_total: int
    faults_fired: int
    rules_armed: int


@dataclass
class CallPlan:
    """The faults that apply to one call, decided when it arrives."""

    http_status: int | None = None
    delay_seconds: float = 0.0
    conflicts: int = 0
    error: tuple[str, str] | None = None


@dataclass
class FaultInjector:
    """Holds fault rules and per-call counters; safe to use from tests and the server."""

    backoff_scale: float = 0.0
    """Odoo sleeps ``uniform(0, 2**try)`` seconds between retries; this scales it (0: none)."""
    _rules: list[_Active] = field(default_factory=list)
    _next_id: int = 1
    _calls: Counter[str] = field(default_factory=Counter)
    _fired: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, rule: FaultRule) -> int:
        """Arm a rule; return its id (refusing connections is the server's: ``refuse_for``)."""
        if rule.kind == "refuse_connections":
            raise ValueError("refuse_connections is applied by SandboxServer.refuse_for")
        with self._lock:
            rule_id = self._next_id
            self._next_id += 1
            self._rules.append(_Active(rule_id, rule, rule.times))
            return rule_id

    def clear(self) -> None:
        """Disarm every rule."""
        with self._lock:
            self._rules.clear()

    def rules(self) -> list[dict[str, object]]:
        """The armed rules with their remaining counts."""
        with self._lock:
            return [
                {"id": a.rule_id, "remaining": a.remaining, **a.rule.model_dump()}
                for a in self._rules
            ]

    def plan(self, model: str, method: str) -> CallPlan:
        """Count the call and decide its faults, using up matching rules."""
        plan = CallPlan()
        with self._lock:
            self._calls[f"{model}.{method}"] += 1
            for active in list(self._rules):
                rule = active.rule
                if not rule.matches(model, method):
                    continue
                self._fired += 1
                if rule.kind == "http_status" and plan.http_status is None:
                    plan.http_status = rule.status
                elif rule.kind == "delay":
                    plan.delay_seconds += rule.delay_seconds
                elif rule.kind == "serialization_failure":
                    plan.conflicts = max(plan.conflicts, rule.conflicts)
                elif rule.kind == "odoo_error" and plan.error is None:
                    plan.error = (rule.error_name, rule.error_message)
                if active.remaining is not None:
                    active.remaining -= 1
                    if active.remaining <= 0:
                        self._rules.remove(active)
        return plan

    def calls(self) -> dict[str, int]:
        """Calls seen per ``model.method``, sorted by name."""
        with self._lock:
            return dict(sorted(self._calls.items()))

    def reset_calls(self) -> None:
        """Forget the call counts."""
        with self._lock:
            self._calls.clear()

    def stats(self) -> FaultStats:
        """Totals for reports."""
        with self._lock:
            return FaultStats(sum(self._calls.values()), self._fired, len(self._rules))
