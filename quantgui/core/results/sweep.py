"""A sweep's records: one `SweepPoint` per (machine type, recipe, batch, threads), each the
interleaved before/after timing of that configuration, and the `SweepResult` holding them with
the crossovers ("INT8 pays from batch 8") and one recommended recipe per machine type.

Torch-free, JSON round-trippable like every result type (`from_json(x.to_json()).to_json() ==
x.to_json()`); a point that failed (its worker died twice) carries its reason and no numbers."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from typing import Any, Optional

from . import _json as j
from .timing import LatencyStats

#: The machine type of points measured on this machine by the local executor.
LOCAL = "local"


@dataclass
class SweepPoint:
    recipe: str                      # the recipe's description (its steps), the line's name
    batch: int
    threads: int
    machine: str = LOCAL             # machine type key (cluster.machine_type)
    before: Optional[LatencyStats] = None
    after: Optional[LatencyStats] = None
    speedup: float = math.nan        # median(before) / median(after)
    ci95: tuple[float, float] = (math.nan, math.nan)
    rounds: int = 0
    noisy: bool = False
    noisy_reason: Optional[str] = None
    load: Optional[float] = None     # the node's 1-minute load average when it was measured
    node: str = ""                   # which node (host or Ray node id) measured it
    attempts: int = 1
    error: Optional[str] = None      # set when the point could not be measured

    @property
    def ok(self) -> bool:
        return self.error is None and self.before is not None and self.after is not None

    def throughput(self, which: str) -> float:
        """Samples per second of one side ("before"/"after"); NaN when unknown."""
        stats = self.before if which == "before" else self.after
        if stats is None or not stats.median_ms > 0:
            return math.nan
        return self.batch * 1000.0 / stats.median_ms

    @property
    def pays(self) -> bool:
        """Faster with 95% confidence: the interval's lower bound is above 1."""
        return self.ok and math.isfinite(self.ci95[0]) and self.ci95[0] > 1.0

    def key(self) -> tuple[str, str, int, int]:
        return (self.machine, self.recipe, self.batch, self.threads)

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({
            "recipe": self.recipe, "batch": self.batch, "threads": self.threads,
            "machine": self.machine,
            "before": None if self.before is None else self.before.to_json(),
            "after": None if self.after is None else self.after.to_json(),
            "speedup": self.speedup, "ci95": list(self.ci95), "rounds": self.rounds,
            "throughput_before": self.throughput("before"),
            "throughput_after": self.throughput("after"),
            "noisy": self.noisy, "noisy_reason": self.noisy_reason, "load": self.load,
            "node": self.node, "attempts": self.attempts, "error": self.error})

    @classmethod
    def from_json(cls, data: Any) -> "SweepPoint":
        ci = j.items(data, "ci95")
        lo, hi = ((j.real({"v": ci[0]}, "v"), j.real({"v": ci[1]}, "v")) if len(ci) == 2
                  else (math.nan, math.nan))
        side = {k: LatencyStats.from_json(j.obj(data, k)) if j.obj(data, k) else None
                for k in ("before", "after")}
        return cls(j.text(data, "recipe"), j.whole(data, "batch"), j.whole(data, "threads"),
                   j.text(data, "machine", LOCAL), side["before"], side["after"],
                   j.real(data, "speedup"), (lo, hi), j.whole(data, "rounds"),
                   j.flag(data, "noisy"), j.maybe_text(data, "noisy_reason"),
                   j.number(data, "load"), j.text(data, "node"), j.whole(data, "attempts", 1),
                   j.maybe_text(data, "error"))


@dataclass
class Crossover:
    """Where a recipe starts paying on one machine type at one thread count: `batch` is the
    smallest batch from which it is faster (CI above 1) at every larger batch measured; None
    when it never pays there."""

    machine: str
    recipe: str
    threads: int
    batch: Optional[int]
    smallest: bool = False           # it pays already at the smallest batch measured

    @property
    def text(self) -> str:
        if self.batch is None:
            return f"{self.recipe} does not pay at {self.threads} thread(s)"
        if self.smallest:
            return f"{self.recipe} pays at every batch at {self.threads} thread(s)"
        return f"{self.recipe} pays from batch {self.batch} at {self.threads} thread(s)"

    def to_json(self) -> dict[str, Any]:
        return {"machine": self.machine, "recipe": self.recipe, "threads": self.threads,
                "batch": self.batch, "smallest": self.smallest, "text": self.text}

    @classmethod
    def from_json(cls, data: Any) -> "Crossover":
        return cls(j.text(data, "machine", LOCAL), j.text(data, "recipe"),
                   j.whole(data, "threads"), j.maybe_whole(data, "batch"),
                   j.flag(data, "smallest"))


@dataclass
class TypeSummary:
    """One machine type: what it is, its nodes, and the recipe recommended for it."""

    machine: str
    environment: dict[str, Any] = field(default_factory=dict)
    nodes: list[str] = field(default_factory=list)
    recommended: Optional[str] = None   # None: no recipe paid anywhere (keep the original)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({"machine": self.machine, "environment": self.environment,
                            "nodes": self.nodes, "recommended": self.recommended,
                            "reason": self.reason})

    @classmethod
    def from_json(cls, data: Any) -> "TypeSummary":
        return cls(j.text(data, "machine", LOCAL), j.obj(data, "environment"),
                   j.texts(data, "nodes"), j.maybe_text(data, "recommended"),
                   j.text(data, "reason"))


@dataclass
class SweepResult:
    source: str
    recipes: list[str]
    batches: list[int]
    threads: list[int]
    points: list[SweepPoint] = field(default_factory=list)
    types: list[TypeSummary] = field(default_factory=list)
    crossovers: list[Crossover] = field(default_factory=list)
    executor: str = "local"
    cancelled: bool = False
    error: Optional[str] = None       # why the sweep stopped early (the cluster went away)

    @property
    def failed(self) -> list[SweepPoint]:
        return [p for p in self.points if not p.ok]

    def to_json(self) -> dict[str, Any]:
        return j.json_safe({
            "schema": j.SCHEMA, "kind": "sweep", "source": self.source,
            "recipes": self.recipes, "batches": self.batches, "threads": self.threads,
            "points": [p.to_json() for p in self.points],
            "types": [t.to_json() for t in self.types],
            "crossovers": [c.to_json() for c in self.crossovers],
            "executor": self.executor, "cancelled": self.cancelled, "error": self.error})

    @classmethod
    def from_json(cls, data: Any, where: str = "sweep") -> "SweepResult":
        data = j.check_schema(data, where, "sweep")

        def ints(key: str) -> list[int]:
            return [v for v in j.items(data, key) if isinstance(v, int)
                    and not isinstance(v, bool)]
        return cls(j.text(data, "source"), j.texts(data, "recipes"), ints("batches"),
                   ints("threads"),
                   [SweepPoint.from_json(p) for p in j.items(data, "points")
                    if isinstance(p, dict)],
                   [TypeSummary.from_json(t) for t in j.items(data, "types")
                    if isinstance(t, dict)],
                   [Crossover.from_json(c) for c in j.items(data, "crossovers")
                    if isinstance(c, dict)],
                   j.text(data, "executor", "local"), j.flag(data, "cancelled"),
                   j.maybe_text(data, "error"))

    CSV_COLUMNS = ("machine", "recipe", "threads", "batch", "before_ms", "after_ms",
                   "speedup", "ci_low", "ci_high", "before_samples_per_s",
                   "after_samples_per_s", "rounds", "noisy", "load", "node", "attempts",
                   "error")

    def csv_rows(self) -> list[list[Any]]:
        """The table, one row per point (unknown numbers empty, never 'nan')."""
        def num(x: Any) -> Any:
            return "" if x is None or (isinstance(x, float) and not math.isfinite(x)) else x
        rows = []
        for p in self.points:
            rows.append([p.machine, p.recipe, p.threads, p.batch,
                         num(p.before.median_ms if p.before else None),
                         num(p.after.median_ms if p.after else None), num(p.speedup),
                         num(p.ci95[0]), num(p.ci95[1]), num(p.throughput("before")),
                         num(p.throughput("after")), p.rounds, p.noisy, num(p.load), p.node,
                         p.attempts, p.error or ""])
        return rows
