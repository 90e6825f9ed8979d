"""Latency of one side and the interleaved timing of both (measure/latency.py measures them).

JSON: `LatencyStats` is a result's "latency_ms" ("samples" is the count, "values" the per-sample
milliseconds); `Timing` is spread over the result's "speedup" object and its top-level "noisy",
"noisy_reason", "threads" and "batch_size" (see RunResult.to_json)."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from . import _json as j


@dataclass
class LatencyStats:
    """Per-call latency of one side, from samples of `calls_per_sample` calls each."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    mean_ms: float
    samples: int
    calls_per_sample: int
    first_call_ms: Optional[float] = None
    values_ms: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, values_ms: list[float], calls_per_sample: int,
           first_call_ms: Optional[float] = None) -> "LatencyStats":
        import numpy as np
        arr = np.asarray(values_ms, dtype=float)
        p10, med, p90 = np.percentile(arr, [10, 50, 90])
        return cls(float(med), float(p10), float(p90), float(arr.mean()), len(arr),
                   calls_per_sample, first_call_ms, [float(v) for v in arr])

    @property
    def spread(self) -> float:
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else math.inf

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"median": self.median_ms, "p10": self.p10_ms, "p90": self.p90_ms,
                            "mean": self.mean_ms, "samples": self.samples,
                            "calls_per_sample": self.calls_per_sample,
                            "first_call": self.first_call_ms, "values": list(self.values_ms)})

    @classmethod
    def from_json(cls, data: Any) -> "LatencyStats":
        values = j.numbers(j.items(data, "values"))
        return cls(j.real(data, "median"), j.real(data, "p10"), j.real(data, "p90"),
                   j.real(data, "mean"), j.whole(data, "samples", len(values)),
                   j.whole(data, "calls_per_sample", 1), j.number(data, "first_call"), values)


@dataclass
class Timing:
    before: LatencyStats
    after: LatencyStats
    speedup: float                   # median(before) / median(after)
    ci95: tuple[float, float]
    rounds: int
    threads: int
    batch_size: int
    noisy: bool = False
    noisy_reason: Optional[str] = None
    #: Set when fewer than the wanted rounds fit in the budget: why, and the budget that fits.
    few_rounds: Optional[str] = None
    #: The time budget this timing had, and the one suggested for a decisive re-run (None when
    #: more time would not add rounds: `max_rounds` was reached).
    budget_s: Optional[float] = None
    suggested_budget_s: Optional[float] = None

    def speedup_json(self) -> dict[str, Any]:
        """The result's "speedup" object."""
        return j.json_safe({"median": self.speedup, "ci95": list(self.ci95),
                            "rounds": self.rounds, "few_rounds": self.few_rounds,
                            "budget_s": self.budget_s,
                            "suggested_budget_s": self.suggested_budget_s})

    @classmethod
    def from_result_json(cls, data: dict) -> "Timing":
        """The timing of a result's JSON (its "speedup", "before"/"after" latencies, "noisy",
        "threads", "batch_size"); a missing or non-finite speedup or bound is NaN."""
        speed = j.obj(data, "speedup")
        ci = j.items(speed, "ci95")
        bounds = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None
                  for v in ci[:2]] if len(ci) == 2 else [None, None]
        lo, hi = (j.real({"v": b}, "v") for b in bounds)
        return cls(LatencyStats.from_json(j.obj(j.obj(data, "before"), "latency_ms")),
                   LatencyStats.from_json(j.obj(j.obj(data, "after"), "latency_ms")),
                   j.real(speed, "median"), (lo, hi), j.whole(speed, "rounds"),
                   j.whole(data, "threads"), j.whole(data, "batch_size"),
                   j.flag(data, "noisy"), j.maybe_text(data, "noisy_reason"),
                   j.maybe_text(speed, "few_rounds"), j.number(speed, "budget_s"),
                   j.number(speed, "suggested_budget_s"))

    @property
    def ci_known(self) -> bool:
        """Both bounds of the interval are finite numbers (a face may show them)."""
        return all(math.isfinite(x) for x in self.ci95)
