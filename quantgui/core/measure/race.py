"""Time several variants against the original in one interleaved run, the order balanced.

`time_interleaved` compares one variant with the original; a search that picks among several
needs them on the same footing: the same moments of the machine, and each one following every
other one equally often (an engine whose threads keep spinning after a call slows whichever
runs next). Each round times every contender once, in the orders of a Williams design
(`balanced_orders`): a plain rotation keeps who-follows-whom fixed, and the contender that
always came right after PyTorch's baseline (its OpenMP threads still spinning) timed 4% slower
than the same OpenVINO model placed elsewhere. A contender's speedup is the original's median
over its median, as in every run, its CI the bootstrap over rounds (`bootstrap_ratio_ci`:
rounds stay paired). Unlike a single run, the race insists on
`min_rounds` (it is what decides), within `MAX_STRETCH` times its budget.
"""

from __future__ import annotations

import gc
import math
from typing import Optional

import numpy as np

from ..model.inputs import Inputs
from ..model.variant import Variant
from ..progress import Task, quiet_task
from ..results.race import Race, RaceEntry
from . import latency
from .latency import _checked_call, _time_calls, _warm_up, bootstrap_ratio_ci

#: Rounds the race wants; it may run to MAX_STRETCH x its budget to get them.
RACE_ROUNDS = 10
MAX_STRETCH = 3.0
#: A sample is at least this long: switching engines costs the next calls (the previous one's
#: threads still spinning: OpenMP after PyTorch, oneTBB after OpenVINO), a cost a deployment
#: running one model never pays; samples of ~1 ms paid it on every sample and ranked
#: OpenVINO INT8 below eager INT8 on a CNN the peers' 50 ms samples rank it above.
RACE_SAMPLE_S = latency.ENGINE_SAMPLE_S
BASELINE = "__original__"


def balanced_orders(n: int) -> list[list[int]]:
    """Orders of range(n) in which each item directly follows every other one equally often
    (a Williams design: n orders for even n, 2n for odd n)."""
    if n <= 1:
        return [list(range(n))]
    seq, lo, hi = [0], 1, n - 1
    while len(seq) < n:
        seq.append(lo)
        lo += 1
        if len(seq) < n:
            seq.append(hi)
            hi -= 1
    orders = [[(x + r) % n for x in seq] for r in range(n)]
    return orders + [o[::-1] for o in orders] if n % 2 else orders


def race(baseline: Variant, contenders: dict[str, Variant], inputs: Inputs, *,
         budget_s: float = 3.0, min_rounds: int = RACE_ROUNDS, max_rounds: int = 200,
         warmup: int = 2, min_sample_s: float = RACE_SAMPLE_S, resamples: int = 1000,
         task: Optional[Task] = None) -> Race:
    """Race `contenders` ({name: variant}) against `baseline` on the same batch."""
    task = task or quiet_task()
    sides = {BASELINE: baseline, **contenders}
    prepared = {name: v.prepare(inputs) for name, v in sides.items()}
    per_call: dict[str, float] = {}
    for name, variant in sides.items():
        task.check()
        first = _checked_call(variant, prepared[name])
        per_call[name], _ = _warm_up(variant, prepared[name], first, budget_s / len(sides),
                                     warmup, task)
    fastest = max(min(per_call.values()), 1e-7)
    calls = max(1, min(10_000, math.ceil(min_sample_s / fastest)))
    rewarm = fastest < 0.02  # as time_interleaved: re-warm caches before short samples
    round_s = (calls + rewarm) * sum(per_call.values())
    fits = int(budget_s // max(round_s, 1e-9))
    rounds = max(2, min(max_rounds, max(fits, min_rounds)))
    names = list(sides)
    values: dict[str, list[float]] = {n: [] for n in names}
    orders = balanced_orders(len(names))
    whole = -(-rounds // len(orders)) * len(orders)  # every order as often as the others
    rounds = whole if whole <= max_rounds else rounds
    total, done = rounds * len(names), 0
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    started = latency.clock()  # tests replace the clock
    try:
        for r in range(rounds):
            if r >= min(rounds, 2) and latency.clock() - started > MAX_STRETCH * budget_s + round_s:
                rounds = r  # the estimate was far off (a busy machine): stop at a round
                break
            for name in (names[i] for i in orders[r % len(orders)]):
                task.check()
                if rewarm:
                    sides[name].run_prepared(prepared[name])
                values[name].append(_time_calls(sides[name], prepared[name], calls) / calls
                                    * 1e3)
                done += 1
                task.report("race", done, total, f"final race: {name}")
    finally:
        if gc_was_enabled:
            gc.enable()
    base = values[BASELINE][:rounds]
    entries = []
    for name in contenders:
        mine = values[name][:rounds]
        # the ratio of medians, as every run's speedup (Timing.speedup)
        speedup = float(np.median(base) / np.median(mine))
        entries.append(RaceEntry(name, speedup, bootstrap_ratio_ci(base, mine, resamples),
                                 float(np.median(mine))))
    return Race(rounds, calls, float(np.median(base)), entries)
