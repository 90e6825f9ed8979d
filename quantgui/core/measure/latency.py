"""Interleaved before/after latency with a bootstrap confidence interval on the speedup.

Absolute CPU times drift by tens of percent within minutes (frequency scaling, other
processes), while ratios measured side by side hold. So before and after are timed in the same
process, alternating A B / B A each round on the same prepared batch, and the speedup is judged
by a 95% CI from resampling whole rounds (pairs stay paired, so drift cancels).

The budget bounds the timed rounds. Warm-up takes a share of it, and a model whose calls take
seconds gets as many rounds as fit (at least `FLOOR_ROUNDS`): the run is not silently stretched
to `min_rounds`, it is flagged instead (`Timing.few_rounds`, said in the verdict).
"""

from __future__ import annotations

import gc
import math
import time
from typing import Optional

import numpy as np
import torch

from ..model.inputs import EngineModule, Inputs
from ..model.variant import Variant
from ..progress import Task, quiet_task
from ..results import LatencyStats, Timing
from ..verdict_words import MIN_DECISIVE_ROUNDS

#: (p90 - p10) / median above this on either side makes the measurement "noisy".
NOISY_SPREAD = 0.25
#: CI width relative to the speedup above this is also "noisy".
NOISY_CI_WIDTH = 0.2
#: Rounds timed however slow the model: the bootstrap needs pairs to resample.
FLOOR_ROUNDS = 2
#: The longest time budget ever suggested (the CLI's --time-budget limit).
MAX_SUGGESTED_BUDGET_S = 3600.0
#: Warm-up runs until it has taken this share of the budget per side (and `warmup` calls)...
WARMUP_SHARE = 0.1
#: ...but never past this share, whatever `warmup` asks; its first call is always made unless
#: the model's first call alone took more (then that call served as the warm-up).
WARMUP_CAP = 0.25
MAX_WARM_CALLS = 200

#: Samples of at least this long when one side runs in another engine (ONNX Runtime,
#: OpenVINO). Switching engines costs a few tens of microseconds (the other pool's threads still
#: spinning: OpenMP after PyTorch, oneTBB after OpenVINO), a cost a deployment running one model
#: never pays; with the 1 ms samples of a PyTorch-only timing it landed on every sample: ONNX
#: Runtime's dynamic INT8 on the digits transformer at batch 1 timed 1.40x, with 20 ms samples
#: 2.35x (the same as the peers benchmark's hand-written session).
ENGINE_SAMPLE_S = 0.02

#: The clock every timing reads; tests replace it with a deterministic one.
clock = time.perf_counter


def bootstrap_ratio_ci(before_ms, after_ms, resamples: int = 1000, seed: int = 0,
                       level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of median(before)/median(after), resampling paired rounds."""
    b = np.asarray(before_ms, dtype=float)
    a = np.asarray(after_ms, dtype=float)
    if len(b) != len(a) or len(b) == 0:
        raise ValueError("before and after need the same, non-zero number of rounds")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(b), size=(resamples, len(b)))
    ratios = np.median(b[idx], axis=1) / np.median(a[idx], axis=1)
    tail = (1.0 - level) / 2 * 100
    lo, hi = np.percentile(ratios, [tail, 100 - tail])
    point = float(np.median(b) / np.median(a))
    # The bootstrap distribution of a median is lumpy with few rounds and its percentile
    # interval can miss the point estimate by a hair; widen rather than report that.
    return float(min(lo, point)), float(max(hi, point))


def _noisy(before: LatencyStats, after: LatencyStats, speedup: float,
           ci: tuple[float, float]) -> Optional[str]:
    reasons = []
    for side, stats in (("before", before), ("after", after)):
        if stats.spread > NOISY_SPREAD:
            reasons.append(f"{side} p10-p90 spread is {stats.spread:.0%} of its median")
    width = (ci[1] - ci[0]) / speedup if speedup > 0 else math.inf
    if width > NOISY_CI_WIDTH:
        reasons.append(f"the speedup's 95% CI is {width:.0%} wide")
    return "; ".join(reasons) or None


def _time_calls(variant: Variant, prepared: Inputs, calls: int) -> float:
    t0 = clock()
    for _ in range(calls):
        variant.timed(prepared)
    return clock() - t0


def _checked_call(variant: Variant, prepared: Inputs) -> float:
    """One untimed-path call (its output shape is checked), timed."""
    t0 = clock()
    variant.checked(prepared)
    return clock() - t0


#: The slow cap saves time: a variant whose calls cost less extra than this is timed anyway
#: (on a busy machine a few milliseconds' calls can look 3x slower by chance).
SLOW_MIN_S = 0.02


def check_slow_cap(before_s: float, after_s: float, cap: float, calls: int,
                   min_s: float = SLOW_MIN_S) -> None:
    """TooSlow when the variant's warm per-call time is `cap` times the original's or more,
    and at least `min_s` longer."""
    from ..errors import TooSlow
    ratio = after_s / max(before_s, 1e-9)
    if ratio >= cap and after_s - before_s >= min_s:
        raise TooSlow(ratio, calls, cap)


def _warm_up(variant: Variant, prepared: Inputs, first_s: float, budget_s: float,
             warmup: int, task: Task, at_least: int = 0,
             stop_above: float = math.inf) -> tuple[float, int]:
    """Warm calls within their share of the budget; returns the per-call estimate and the
    calls made (the first included).
    `at_least` warm calls are made whatever they cost (the slow cap judges a variant by calls
    after its first, which may compile); past those, a warm call of `stop_above` seconds or
    more ends the warm-up (it is already too slow to be worth timing)."""
    # Freshly copied weights and allocator pools make the calls after the first slow too (tens
    # of ms on a VM touching new pages), so warm for a share of the budget, not just N calls.
    warm: list[float] = []
    spent = 0.0
    while len(warm) < MAX_WARM_CALLS:
        estimate = warm[-1] if warm else first_s
        wanted = len(warm) < max(1, warmup) or spent < WARMUP_SHARE * budget_s
        if len(warm) >= at_least and (not wanted or spent + estimate > WARMUP_CAP * budget_s):
            break
        task.check()
        warm.append(_checked_call(variant, prepared))
        spent += warm[-1]
        if len(warm) >= at_least and warm[-1] >= stop_above:
            break
    if not warm:  # the first call alone outran the warm-up's share: it is the estimate
        return first_s, 1
    return float(np.median(warm[len(warm) // 2:])), 1 + len(warm)


def _few_rounds(rounds: int, wanted: int, budget_s: float, round_s: float) -> Optional[str]:
    if rounds >= wanted:
        return None
    suggest = max(1, math.ceil(wanted * round_s * 1.2))
    return (f"only {rounds} rounds fit in the {budget_s:g} s time budget ({round_s:.3g} s per "
            f"round), so the confidence interval is wide; give a time budget of {suggest} s "
            f"(--time-budget {suggest}) for a decision")


def _suggested_budget(rounds: int, wanted: int, max_rounds: int, budget_s: float,
                      round_s: float) -> Optional[float]:
    """A budget that gives a decisive number of rounds, or 4x this one (quadrupling the rounds
    halves the interval's width); None when the rounds were capped by `max_rounds`."""
    target = max(wanted, MIN_DECISIVE_ROUNDS)
    if rounds < target:
        suggest = math.ceil(target * round_s * 1.2)
    elif rounds >= max_rounds:
        return None
    else:
        suggest = math.ceil(4 * budget_s)
    return float(min(MAX_SUGGESTED_BUDGET_S, max(1, suggest)))


def time_interleaved(before: Variant, after: Variant, inputs: Inputs, *,
                     budget_s: float = 3.5, min_rounds: int = 10, max_rounds: int = 200,
                     warmup: int = 3, min_sample_s: float = 1e-3, resamples: int = 1000,
                     seed: int = 0, task: Optional[Task] = None,
                     slow_cap: Optional[float] = None,
                     slow_min_s: float = SLOW_MIN_S) -> Timing:
    """Time `before` and `after` on the same batch, interleaved; see the module docstring.

    Rounds are chosen so the timed part fits `budget_s`; when fewer than `min_rounds` fit (at
    least `FLOOR_ROUNDS` are timed), `Timing.few_rounds` says so.
    """
    task = task or quiet_task()
    if any(isinstance(v.module, EngineModule) and not v.module.in_torch for v in (before, after)):
        min_sample_s = max(min_sample_s, ENGINE_SAMPLE_S)
    # Preparing (dtype casts, channels-last copies) is part of feeding the model, not of the
    # model's latency, and happens once per batch in deployment too.
    sides = {"before": (before, before.prepare(inputs)), "after": (after, after.prepare(inputs))}
    first_ms: dict[str, float] = {}
    per_call: dict[str, float] = {}
    for name, (variant, prepared) in sides.items():
        task.check()
        # The first call may compile (seconds) and allocates; it is reported on its own.
        first_s = _checked_call(variant, prepared)
        first_ms[name] = first_s * 1e3
        capped = slow_cap is not None and name == "after"
        per_call[name], calls_made = _warm_up(
            variant, prepared, first_s, budget_s, warmup, task, at_least=1 if capped else 0,
            stop_above=slow_cap * per_call["before"] if capped else math.inf)
    if slow_cap is not None:  # "after" was warmed last: calls_made are its calls
        check_slow_cap(per_call["before"], per_call["after"], slow_cap, calls_made, slow_min_s)

    # Fast calls (< min_sample_s) are timed in groups so perf_counter's overhead and
    # resolution vanish; both sides use the same count so a sample is the same kind of thing.
    fastest = max(min(per_call.values()), 1e-7)
    calls = max(1, min(10_000, math.ceil(min_sample_s / fastest)))
    # The other side's call evicts this side's weights from the caches, so the first call of
    # a sample runs cold; timed alone (torch.utils.benchmark) the same model measured 4-13%
    # faster. For short calls one untimed call before each sample re-warms them; calls of
    # 20 ms and more hardly notice and are not doubled.
    rewarm = fastest < 0.02
    round_s = (calls + rewarm) * (per_call["before"] + per_call["after"])
    fits = int(budget_s // max(round_s, 1e-9))
    rounds = max(FLOOR_ROUNDS, min(max_rounds, fits))
    if calls > 1:  # let the extra calls settle caches and allocator before timing
        for name, (variant, prepared) in sides.items():
            task.check()
            _time_calls(variant, prepared, calls)

    values: dict[str, list[float]] = {"before": [], "after": []}
    total = 2 * rounds
    done = 0
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing in one side's sample is noise, not latency
    started = clock()
    try:
        for r in range(rounds):
            # The plan came from warm-up estimates; if they were far off (the machine got
            # busy), stop at a round boundary once well past the budget.
            if r >= FLOOR_ROUNDS and clock() - started > 2 * budget_s:
                rounds = r
                # the planned total was an estimate: close the progress bar at what ran
                task.report("time", done, done, "timing stopped at its budget (machine busy)")
                break
            order = ("before", "after") if r % 2 == 0 else ("after", "before")
            for name in order:
                task.check()
                variant, prepared = sides[name]
                if rewarm:
                    variant.run_prepared(prepared)
                ms = _time_calls(variant, prepared, calls) / calls * 1e3
                values[name].append(ms)
                done += 1
                task.report("time", done, total, f"timing {name}", which=name, latency_ms=ms)
    finally:
        if gc_was_enabled:
            gc.enable()

    b = LatencyStats.of(values["before"], calls, first_ms["before"])
    a = LatencyStats.of(values["after"], calls, first_ms["after"])
    speedup = b.median_ms / a.median_ms
    ci = bootstrap_ratio_ci(values["before"], values["after"], resamples, seed)
    reason = _noisy(b, a, speedup, ci)
    wanted = min(min_rounds, max_rounds)
    few = _few_rounds(rounds, wanted, budget_s, round_s)
    suggested = _suggested_budget(rounds, wanted, max_rounds, budget_s, round_s)
    return Timing(b, a, speedup, ci, rounds, torch.get_num_threads(), inputs.batch_size,
                  reason is not None, reason, few, budget_s, suggested)
