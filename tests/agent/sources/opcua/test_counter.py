"""Counter arithmetic: deltas of observed readings add up to what the machine really made.

The property tests simulate a PLC counter that grows, resets to zero and wraps at
``rollover_max``, observed through an arbitrary subsequence of its values (a server may coalesce)
with readings repeated (every resubscription repeats the current value). The observations obey
the assumptions the arithmetic needs, and only those:

1. the first and the last value are read (the baseline, and the state that is reported);
2. the value just before a reset is read (what is made between the last reading and a reset is
   otherwise invisible), and it lies below the rollover window (else a reset looks like a wrap);
3. after a reset, a value is read before the counter climbs back to the value read before it;
4. before a wrap, a value within the rollover window is read; after it, a value is read before
   the counter climbs back to that value (so at most one wrap lies between two readings);
5. a counter grows by at most a quarter of the rollover window per step (it passes through the
   window before it wraps).
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from agent.sources.opcua.counter import delta


@dataclass(frozen=True)
class Observed:
    """What the source reads of a counter, and what the machine really made meanwhile."""

    readings: list[int]
    rollover_max: int | None
    rollover_window: float
    produced: int


@st.composite
def observed_counters(draw: st.DrawFn) -> Observed:
    rollover_max = draw(st.none() | st.integers(1, 100) | st.integers(100, 2**32 - 1))
    window = draw(st.floats(0.01, 0.5))
    if rollover_max is None:
        step_max = draw(st.integers(1, 10**6))
        value = draw(st.integers(0, 10**9))
    else:
        step_max = max(1, int(rollover_max * window / 4))
        value = draw(st.integers(0, rollover_max))
    values, made, events = [value], [0], []  # events: (kind, index of the first value after it)
    for _ in range(draw(st.integers(1, 80))):
        below_window = rollover_max is None or value < rollover_max * (1 - window)
        if value > 0 and below_window and draw(st.integers(0, 7)) == 0:
            value = 0
            events.append(("reset", len(values)))
            values.append(0)
            made.append(0)
            continue
        step = draw(st.integers(0, step_max))
        value += step
        if rollover_max is not None and value > rollover_max:
            value -= rollover_max + 1
            events.append(("wrap", len(values)))
        values.append(value)
        made.append(step)

    last = len(values) - 1
    required = {0, last}
    bounds = [i for _, i in events] + [len(values)]
    segment_start = 0
    for (kind, at), next_event in zip(events, bounds[1:], strict=True):
        if kind == "reset":
            before = at - 1
        else:
            threshold = rollover_max * (1 - window)  # type: ignore[operator]
            in_window = [i for i in range(segment_start, at) if values[i] >= threshold]
            before = draw(st.sampled_from(in_window))
        required.add(before)
        climbed = next(
            (i for i in range(at, next_event) if values[i] >= values[before]), next_event
        )
        required.add(draw(st.sampled_from(range(at, climbed))))
        segment_start = at
    chosen = draw(st.lists(st.booleans(), min_size=len(values), max_size=len(values)))
    indexes = sorted(required | {i for i, keep in enumerate(chosen) if keep})
    readings: list[int] = []
    for i in indexes:
        readings += [values[i]] * draw(st.integers(1, 3))
    return Observed(readings, rollover_max, window, sum(made[1:]))


def total(observed: Observed) -> int:
    last: int | None = None
    counted = 0
    for value in observed.readings:
        grown = delta(last, value, observed.rollover_max, observed.rollover_window)
        assert grown >= 0
        counted += grown
        last = value
    return counted


@given(observed_counters())
def test_deltas_add_up_to_true_production(observed: Observed) -> None:
    assert total(observed) == observed.produced


@given(
    st.none() | st.integers(0, 2**32),
    st.integers(0, 2**32),
    st.none() | st.integers(1, 2**32),
    st.floats(0.01, 0.99),
)
def test_delta_is_never_negative(
    last: int | None, value: int, rollover_max: int | None, window: float
) -> None:
    assert delta(last, value, rollover_max, window) >= 0


def test_first_reading_is_a_baseline() -> None:
    assert delta(None, 12345, None, 0.1) == 0
    assert delta(None, 12345, 65535, 0.1) == 0


def test_repeated_reading_is_nothing() -> None:
    assert delta(40, 40, 65535, 0.1) == 0


def test_growth_is_production() -> None:
    assert delta(40, 47, 65535, 0.1) == 7


def test_drop_from_near_the_maximum_is_a_wrap() -> None:
    assert delta(65530, 4, 65535, 0.1) == 5 + 4 + 1


def test_drop_from_elsewhere_is_a_reset_counting_since() -> None:
    assert delta(30000, 4, 65535, 0.1) == 4
    assert delta(65530, 4, None, 0.1) == 4


def test_a_reading_above_the_maximum_cannot_wrap_there() -> None:
    assert delta(70000, 4, 65535, 0.1) == 4
