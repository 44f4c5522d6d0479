"""Counter arithmetic: how much a PLC's cumulative count grew between two readings.

PLC counters are read through subscriptions that may coalesce values, repeat the current value
on every (re)subscription, reset to zero (shift change, PLC restart) and wrap at a maximum. The
rules below turn consecutive readings into production without double counting:

* the first reading ever seen is a baseline, not production;
* a repeated reading is nothing;
* growth is production;
* a drop from near ``rollover_max`` (within ``rollover_window`` of it) is a wrap;
  any other drop is a reset to zero, and the new value counts what was made since
  (a ``last`` above ``rollover_max`` cannot be a wrap at ``rollover_max``, so it is a reset too).

Correctness assumes at least one reading arrives after a reset before the counter climbs back to
the value read before the reset, and at most one wrap between two readings.
"""

from __future__ import annotations


def delta(last: int | None, value: int, rollover_max: int | None, rollover_window: float) -> int:
    """Production between reading ``last`` and reading ``value`` (both cumulative counts)."""
    if last is None or value == last:
        return 0
    if value > last:
        return value - last
    if rollover_max is not None and rollover_max >= last >= rollover_max * (1 - rollover_window):
        return (rollover_max - last) + value + 1
    return value
