"""The time budget bounds the timing, whatever the model's speed.

A 2 s forward with --time-budget 0.5 once ran for 64 s (warm-up of 3 calls, then 10 rounds
forced). The timer now reads a clock the tests replace: the fake model's forward advances it, so
the number of calls and the simulated seconds are exact, with no wall-clock assertion.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from quantgui.core import measure
from quantgui.core.errors import Cancelled
from quantgui.core.measure import latency
from quantgui.core.model.inputs import Inputs
from quantgui.core.model.variant import Variant
from quantgui.core.progress import CancelToken, Task


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Slow(nn.Module):
    """Each call 'takes' `seconds` on the fake clock."""

    def __init__(self, clock: FakeClock, seconds: float) -> None:
        super().__init__()
        self.clock, self.seconds, self.calls = clock, seconds, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.clock.now += self.seconds
        return x * 2


@pytest.fixture
def clock(monkeypatch):
    fake = FakeClock()
    monkeypatch.setattr(latency, "clock", fake)
    return fake


def _time(clock, seconds, budget, **kwargs):
    before, after = Slow(clock, seconds), Slow(clock, seconds)
    timing = measure.time_interleaved(Variant.baseline(before), Variant.baseline(after),
                                      Inputs.of(torch.ones(2, 4)), budget_s=budget, **kwargs)
    return timing, before.calls + after.calls


def test_a_slow_model_is_not_stretched_past_the_budget(clock):
    timing, calls = _time(clock, 2.0, 0.5, min_rounds=10, warmup=3)
    # One first call per side (no warm-up: it alone outran the warm-up's share), then the
    # floor of rounds, one call per side each: 64 s of calls before, 12 s now.
    assert timing.rounds == latency.FLOOR_ROUNDS == 2
    assert calls == 2 + 2 * timing.rounds
    assert clock.now == pytest.approx(2.0 * calls)
    assert timing.few_rounds == ("only 2 rounds fit in the 0.5 s time budget (4 s per round), "
                                 "so the confidence interval is wide; give a time budget of 48 s "
                                 "(--time-budget 48) for a decision")
    assert timing.speedup_json()["few_rounds"] == timing.few_rounds
    verdict = measure.verdict(timing, [], Variant.baseline(nn.Identity()), nn.Identity(), 2)
    assert timing.few_rounds in verdict.reasons + verdict.warnings


@pytest.mark.parametrize("seconds", [0.0625, 0.25, 1.0])  # exact in binary
def test_the_timed_rounds_fit_the_budget(clock, seconds):
    budget = 2.0
    timing, calls = _time(clock, seconds, budget, min_rounds=3, warmup=3)
    round_s = 2 * seconds
    # the timed phase: as many rounds as fit, never fewer than the floor
    assert timing.rounds == max(latency.FLOOR_ROUNDS, int(budget // round_s))
    # warm-up stays within its cap per side, plus each side's first call
    warm_calls = calls - 2 - 2 * timing.rounds
    assert warm_calls * seconds <= 2 * latency.WARMUP_CAP * budget + 1e-9
    assert (timing.few_rounds is None) == (timing.rounds >= 3)


def test_a_fast_model_gets_its_rounds_and_no_flag(clock):
    timing, calls = _time(clock, 0.01, 1.0, min_rounds=10, max_rounds=200)
    assert timing.rounds >= 10 and timing.few_rounds is None


def test_cancel_answers_within_one_forward_call(clock):
    """The engine checks between calls: after a cancel, no further forward call starts."""
    token = CancelToken()

    class CancelsOnCall3(Slow):
        def forward(self, x):
            out = super().forward(x)
            if self.calls == 3:
                token.cancel()  # the user presses Cancel during this call
            return out
    model = CancelsOnCall3(clock, 2.0)
    with pytest.raises(Cancelled):
        measure.time_interleaved(Variant.baseline(model), Variant.baseline(Slow(clock, 2.0)),
                                 Inputs.of(torch.ones(2, 4)), budget_s=30,
                                 task=Task(None, token))
    assert model.calls == 3
