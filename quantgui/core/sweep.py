"""Sweeps: recipes x batch sizes x thread counts, each point the same interleaved before/after
timing a run does (measure/latency.py), streamed as it is measured.

`Measurer` measures points in one process (the model opened once, each recipe applied once);
an executor (quantgui/core/cluster) decides where: this process, or the nodes of a Ray cluster,
each running a `Measurer` of its own. `summarize` turns the points into crossovers and one
recommended recipe per machine type. Anytime: cancelling keeps every point measured so far.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import os
import socket
from typing import Any, Callable, Optional

from .errors import Cancelled, UserError
from .progress import Task, quiet_task
from .recipe import Recipe
from .results.sweep import LOCAL, Crossover, SweepPoint, SweepResult, TypeSummary

#: Batch sizes and thread counts a sweep accepts (a typo like 10000000 fails before any work).
MAX_BATCH = 65536
MAX_POINTS = 1000


@dataclass
class SweepSpec:
    """What to sweep: the recipes (a baseline-vs-itself recipe has no steps), batch sizes and
    thread counts, and the timing budget of each point."""

    recipes: list[Recipe]
    batches: list[int]
    threads: list[int]
    time_budget_s: float = 0.5
    min_rounds: int = 6

    def __post_init__(self) -> None:
        if not self.recipes:
            raise UserError("a sweep needs at least one recipe")
        for name, values in (("batch", self.batches), ("threads", self.threads)):
            if not values:
                raise UserError(f"a sweep needs at least one {name} value")
            bad = [v for v in values if not isinstance(v, int) or isinstance(v, bool) or v < 1]
            if bad:
                raise UserError(f"{name} values must be whole numbers from 1, got {bad[0]!r}")
        if max(self.batches) > MAX_BATCH:
            raise UserError(f"batch sizes go up to {MAX_BATCH}, got {max(self.batches)}")
        self.batches = sorted(set(self.batches))
        self.threads = sorted(set(self.threads))
        if len(self.points()) > MAX_POINTS:
            raise UserError(f"{len(self.points())} points is too many for one sweep "
                            f"(at most {MAX_POINTS})")

    def points(self) -> list[tuple[Recipe, int, int]]:
        """In measuring order: per recipe, per thread count, batches ascending (a line fills
        from the left, and a cancelled sweep still has whole curves of the first recipes)."""
        return [(r, b, t) for r in self.recipes for t in self.threads for b in self.batches]

    def to_json(self) -> dict[str, Any]:
        return {"recipes": [r.to_json() for r in self.recipes], "batches": self.batches,
                "threads": self.threads, "time_budget_s": self.time_budget_s,
                "min_rounds": self.min_rounds}


def recipe_name(recipe: Recipe) -> str:
    return recipe.describe() if recipe.steps else "original (noise check)"


def node_load() -> Optional[float]:
    try:
        return float(os.getloadavg()[0])
    except (OSError, AttributeError):
        return None


@dataclass
class Measurer:
    """Measures points on one opened model, applying each recipe once (its variant cached)."""

    loaded: Any                                   # model.loaded.LoadedModel
    machine: str = LOCAL
    node: str = field(default_factory=socket.gethostname)
    variants: dict[str, Any] = field(default_factory=dict)

    def variant(self, recipe: Recipe, task: Task) -> Any:
        key = recipe_name(recipe)
        if key not in self.variants:
            from .run import optimize
            self.variants[key] = (optimize(self.loaded, recipe, None, task)[0] if recipe.steps
                                  else self.loaded.baseline().copy())
        return self.variants[key]

    def measure(self, recipe: Recipe, batch: int, threads: int, spec: SweepSpec,
                task: Optional[Task] = None) -> SweepPoint:
        from .measure.latency import time_interleaved
        from .run.runner import batched_example, torch_threads
        task = task or quiet_task()
        # The timer reports every sample; a sweep reports points, so its samples stay quiet.
        quiet = Task(None, task.cancel_token)
        after = self.variant(recipe, quiet)
        with torch_threads(threads) as used:
            example = batched_example(self.loaded, batch)
            load = node_load()
            timing = time_interleaved(self.loaded.baseline(), after, example,
                                      budget_s=spec.time_budget_s, min_rounds=spec.min_rounds,
                                      warmup=2, task=quiet)
        return SweepPoint(recipe_name(recipe), batch, used, self.machine, timing.before,
                          timing.after, timing.speedup, timing.ci95, timing.rounds,
                          timing.noisy, timing.noisy_reason, load, self.node)


OnPoint = Callable[[SweepPoint], None]


def measure_all(measurer: Measurer, spec: SweepSpec, task: Task,
                on_point: Optional[OnPoint] = None) -> tuple[list[SweepPoint], bool]:
    """Every point of `spec` in this process; (points, cancelled). A recipe that cannot be
    applied (a UserError) fails its own points with the reason; the others go on."""
    points: list[SweepPoint] = []
    total = len(spec.points())
    broken: dict[str, str] = {}
    try:
        for i, (recipe, batch, threads) in enumerate(spec.points()):
            task.report("sweep", i, total, f"{recipe_name(recipe)}, batch {batch}, "
                        f"{threads} thread(s)")
            name = recipe_name(recipe)
            if name in broken:
                point = SweepPoint(name, batch, threads, measurer.machine, node=measurer.node,
                                   error=broken[name])
            else:
                try:
                    point = measurer.measure(recipe, batch, threads, spec, task)
                except UserError as exc:
                    broken[name] = str(exc)
                    point = SweepPoint(name, batch, threads, measurer.machine,
                                       node=measurer.node, error=str(exc))
            points.append(point)
            if on_point is not None:
                on_point(point)
        task.report("sweep", total, total, "sweep done")
    except Cancelled:
        return points, True
    return points, False


# --- reading the points -------------------------------------------------------------------------

def crossovers(points: list[SweepPoint]) -> list[Crossover]:
    """Per machine type, recipe and thread count: the smallest batch from which the recipe is
    faster with 95% confidence at every larger batch measured."""
    lines: dict[tuple[str, str, int], list[SweepPoint]] = {}
    for p in points:
        if p.ok:
            lines.setdefault((p.machine, p.recipe, p.threads), []).append(p)
    out = []
    for (machine, recipe, threads), line in lines.items():
        line.sort(key=lambda p: p.batch)
        start: Optional[int] = None
        for p in reversed(line):
            if not p.pays:
                break
            start = p.batch
        out.append(Crossover(machine, recipe, threads, start,
                             start is not None and start == line[0].batch))
    return out


def recommend_per_type(points: list[SweepPoint], machine: str) -> tuple[Optional[str], str]:
    """The recipe with the best geometric-mean speedup among those faster (CI above 1) at most
    of their points on this machine type; (None, why) when none is."""
    by_recipe: dict[str, list[SweepPoint]] = {}
    for p in points:
        if p.machine == machine:
            by_recipe.setdefault(p.recipe, []).append(p)
    best: Optional[tuple[float, str, str]] = None
    for recipe, pts in by_recipe.items():
        ok = [p for p in pts if p.ok and p.speedup > 0 and math.isfinite(p.speedup)]
        pays = sum(p.pays for p in ok)
        if not ok or pays * 2 < len(pts):
            continue
        gmean = math.exp(sum(math.log(p.speedup) for p in ok) / len(ok))
        why = (f"{gmean:.2f}x geometric-mean speedup, faster at {pays} of {len(pts)} points "
               f"(speed only: check its quality with quantgui-cli run)")
        if gmean > 1 and (best is None or gmean > best[0]):
            best = (gmean, recipe, why)
    if best is None:
        return None, "no recipe was faster with 95% confidence at half or more of its points: keep the original"
    return best[1], best[2]


def summarize(result: SweepResult, environments: dict[str, dict], nodes: dict[str, list[str]]
              ) -> SweepResult:
    """Fill the result's crossovers and per-type summaries from its points."""
    result.crossovers = crossovers(result.points)
    machines = list(dict.fromkeys(list(environments) + [p.machine for p in result.points]))
    result.types = []
    for m in machines:
        recommended, reason = recommend_per_type(result.points, m)
        result.types.append(TypeSummary(m, environments.get(m, {}), nodes.get(m, []),
                                        recommended, reason))
    return result


def format_sweep(result: SweepResult) -> str:
    """The text table `quantgui-cli sweep` prints: one block per machine type."""
    lines = []
    for t in result.types:
        lines.append(f"machine type: {t.machine}" + (f" ({len(t.nodes)} node(s))"
                                                     if t.nodes else ""))
        lines.append(f"  {'recipe':<28} {'thr':>3} {'batch':>5} {'before ms':>10} "
                     f"{'after ms':>10} {'speedup':>8} {'95% CI':>13} {'after/s':>10}")
        for p in (p for p in result.points if p.machine == t.machine):
            if not p.ok:
                lines.append(f"  {p.recipe[:28]:<28} {p.threads:>3} {p.batch:>5} "
                             f"failed: {p.error}")
                continue
            flag = " noisy" if p.noisy else ""
            lines.append(f"  {p.recipe[:28]:<28} {p.threads:>3} {p.batch:>5} "
                         f"{p.before.median_ms:>10.3f} {p.after.median_ms:>10.3f} "
                         f"{p.speedup:>7.2f}x {p.ci95[0]:>6.2f}-{p.ci95[1]:<6.2f} "
                         f"{p.throughput('after'):>10.0f}{flag}")
        for c in result.crossovers:
            if c.machine == t.machine:
                lines.append(f"  crossover: {c.text}")
        lines.append(f"  recommended: {t.recommended or 'the original'} ({t.reason})")
    if result.cancelled:
        lines.append(f"cancelled: {len(result.points)} point(s) measured are kept")
    if result.error:
        lines.append(f"stopped early: {result.error}")
    return "\n".join(lines)
