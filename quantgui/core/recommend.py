"""Recommend a recipe: try what is likely to pay on this model and this CPU, measure, pick.

No technique wins everywhere (the best INT8 engine depends on the batch, BF16 depends on the
CPU, channels-last on the layer mix), so candidates are chosen from the model's layers and the
CPU's capabilities (each technique proposes its own: `Technique.recommend_hints`), each is run
through `run_recipe` (interleaved timing, bootstrap CI, accuracy or fidelity), and the fastest
one whose verdict is "faster" and that keeps quality within the bound wins.

Order matters because the search is *anytime*: the likeliest winners go first, and a cancel
returns the best found so far with the whole trial log rather than nothing.

The resulting order (the priority bands in techniques/hooks.py):
- BF16 first on CPUs with native BF16 (AMX or AVX512-BF16); it is slow elsewhere.
- Conv nets: static INT8 (calibrated), channels-last, channels-last + freeze.
- Linear/LSTM-heavy models: dynamic INT8 (weights INT8, activations quantized per call).
- Transformers: the native fast path / SDPA attention, with BF16 or INT8.
- `inference_mode` is added to every combination (free, <= 3%).
- compile is left out unless asked: its first call costs 10-30 s per candidate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import math
import time
from typing import Any, Optional

from torch import nn

from . import env
from .errors import Cancelled, UserError, clean_message
from .model.loaded import LoadedModel
from .progress import Task, quiet_task
from .recipe import Recipe
from .techniques.hooks import ModelTraits, fast_formats  # noqa: F401 - fast_formats is re-exported

DEFAULT_MAX_ACCURACY_DROP = 0.01
DEFAULT_MIN_COSINE = 0.99
#: Per-candidate timing budget: enough for a CI that separates 1.2x from 1.0x on a quiet CPU.
DEFAULT_TIME_BUDGET_S = 1.0

_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


@dataclass
class Trial:
    """One candidate recipe and what it measured (or why it failed)."""

    recipe: Recipe
    result: Any = None                     # RunResult, or None when the run failed
    error: Optional[str] = None
    meets_bound: bool = False
    quality_note: str = ""
    seconds: float = 0.0

    @property
    def speedup(self) -> Optional[float]:
        return None if self.result is None else float(self.result.timing.speedup)

    @property
    def ci95(self) -> Optional[tuple[float, float]]:
        return None if self.result is None else tuple(float(v) for v in self.result.timing.ci95)

    @property
    def size_ratio(self) -> Optional[float]:
        return None if self.result is None else self.result.size_ratio

    @property
    def accuracy(self) -> Optional[float]:
        return None if self.result is None else self.result.after.accuracy

    @property
    def accuracy_drop(self) -> Optional[float]:
        if self.result is None:
            return None
        b, a = self.result.before.accuracy, self.result.after.accuracy
        return None if a is None or b is None else b - a

    @property
    def cosine(self) -> Optional[float]:
        return None if self.result is None else float(self.result.fidelity.cosine)

    @property
    def verdict(self) -> str:
        if self.result is None:
            return "failed"
        return self.result.verdict.label

    def row(self) -> dict[str, Any]:
        """One row of the trial table (what the GUI and `recommend --json` show)."""
        def f(x: Optional[float]) -> Optional[float]:
            return None if x is None or not math.isfinite(x) else float(x)
        ci = self.ci95
        return {"recipe": self.recipe.describe(), "steps": self.recipe.to_json()["steps"],
                "speedup": f(self.speedup), "ci95": None if ci is None else [f(ci[0]), f(ci[1])],
                "size_ratio": f(self.size_ratio), "accuracy": f(self.accuracy),
                "accuracy_drop": f(self.accuracy_drop), "cosine": f(self.cosine),
                "verdict": self.verdict, "meets_bound": self.meets_bound,
                "quality": self.quality_note, "error": self.error,
                "seconds": round(self.seconds, 2)}


@dataclass
class Recommendation:
    best: Optional[Trial]                  # None: nothing beat the original within the bound
    trials: list[Trial] = field(default_factory=list)
    cancelled: bool = False
    bound: dict[str, Any] = field(default_factory=dict)
    candidates: int = 0                    # how many were planned
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def recipe(self) -> Optional[Recipe]:
        return None if self.best is None else self.best.recipe

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [t.row() for t in self.trials]

    @property
    def tried(self) -> str:
        """'3 of 9 candidates tried, then cancelled; 1 inconclusive: measure longer to decide'."""
        text = f"{len(self.trials)} of {self.candidates} candidates tried"
        if self.cancelled:
            text += ", then cancelled"
        unsure = sum(t.verdict == "inconclusive" for t in self.trials)
        if unsure:
            text += f"; {unsure} inconclusive: measure longer to decide"
        return text

    @property
    def detail(self) -> str:
        """The result without the recipe's name: speed, quality and what was tried."""
        if self.best is None:
            proven = "proven " if any(t.verdict == "inconclusive" for t in self.trials) else ""
            return f"nothing was {proven}faster within the quality bound ({self.tried})"
        ci = self.best.ci95 or (math.nan, math.nan)
        return (f"{self.best.speedup:.2f}x faster (95% CI {ci[0]:.2f}-{ci[1]:.2f}), "
                f"{self.best.quality_note} ({self.tried})")

    @property
    def message(self) -> str:
        if self.best is None:
            return f"keep the original: {self.detail}"
        return f"{self.best.recipe.describe()}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        from .run import json_safe
        return json_safe({
            "best": None if self.best is None else {
                "recipe": self.best.recipe.to_json(), "row": self.best.row(),
                "result": self.best.result.to_json()},
            "message": self.message,
            "cancelled": self.cancelled,
            "bound": dict(self.bound),
            "candidates": self.candidates,
            "trials": self.rows,
            "environment": self.environment,
        })

    def table(self) -> str:
        """Plain aligned text of the trial table."""
        from .run import num, pct, table
        rows = [("recipe", "speedup", "95% CI", "size", "accuracy", "cosine", "verdict", "bound")]
        for t in self.trials:
            ci = t.ci95
            rows.append((t.recipe.describe(),
                         "-" if t.speedup is None else f"{t.speedup:.2f}x",
                         "-" if ci is None else f"{ci[0]:.2f}-{ci[1]:.2f}",
                         "-" if t.size_ratio is None else f"{t.size_ratio:.2f}x",
                         pct(t.accuracy), num(t.cosine),
                         t.verdict if t.error is None else f"failed: {t.error[:60]}",
                         "yes" if t.meets_bound else "no"))
        marker = "" if self.best is None else f"\nbest: {self.best.recipe.describe()}"
        return table(rows) + marker


# --- candidates ---------------------------------------------------------------------------------

def model_traits(module: nn.Module) -> ModelTraits:
    """The layer counts the techniques' hints are chosen by."""
    linear = conv = recurrent = attention = 0
    for m in module.modules():
        if isinstance(m, nn.Linear):
            linear += 1
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            conv += 1
        elif isinstance(m, _RECURRENT):
            recurrent += 1
        elif isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("SelfAttention"):
            attention += 1
    hf = getattr(getattr(module, "config", None), "_attn_implementation", None) is not None
    return ModelTraits(linear, conv, recurrent, attention, hf)


def candidate_recipes(loaded: LoadedModel, capabilities: Optional[list[str]] = None,
                      include_compile: bool = False) -> list[Recipe]:
    """Recipes worth trying on this model and CPU, likeliest winners first (valid ones only).

    Each technique proposes its own candidates (`Technique.recommend_hints`) with a priority on
    the shared scale in techniques/hooks.py; here they are ordered, de-duplicated and kept when
    every step applies (and has the labels it needs) and the recipe is valid."""
    from .techniques import all_techniques
    caps = env.cpu_capabilities() if capabilities is None else list(capabilities)
    module = loaded.module
    traits = model_traits(module)
    techs = all_techniques()
    hints = [h for tech in techs.values() for h in tech.recommend_hints(traits, caps)
             if include_compile or not h.costly]
    hints.sort(key=lambda h: h.priority)  # stable: equal priorities keep registry order

    labeled = loaded.train is not None and loaded.train.labeled
    out: list[Recipe] = []
    seen: set[tuple[str, ...]] = set()
    for hint in hints:
        names = hint.steps
        if names in seen:
            continue
        seen.add(names)
        ok = True
        for name in names:
            tech = techs.get(name)
            if tech is None or tech.applies_to(module) is not None:
                ok = False
                break
            if tech.needs_labels and not labeled:
                ok = False
                break
        if not ok:
            continue
        recipe = Recipe.of(*names)
        try:
            recipe.validate()
        except UserError:
            continue
        out.append(recipe)
    return out


def _qat_fallback(loaded: LoadedModel) -> Optional[Recipe]:
    """QAT recovers accuracy static INT8 lost; only worth its training time when that happened."""
    from .techniques import all_techniques
    tech = all_techniques().get("qat_int8")
    if tech is None or tech.applies_to(loaded.module) is not None:
        return None
    if loaded.train is None or not loaded.train.labeled:
        return None
    return Recipe.of("qat_int8", "inference_mode")


# --- the search ---------------------------------------------------------------------------------

def _judge(trial: Trial, max_drop: Optional[float], min_cos: Optional[float]) -> None:
    r = trial.result
    if r is None:
        trial.meets_bound, trial.quality_note = False, "no result"
        return
    notes, ok = [], True
    if r.fidelity.nonfinite:
        ok = False
        notes.append(f"{r.fidelity.nonfinite} NaN/Inf outputs")
    drop = trial.accuracy_drop
    if max_drop is not None and drop is not None:
        ok = ok and drop <= max_drop + 1e-12
        notes.append(f"accuracy drop {100 * drop:.2f} pts (bound {100 * max_drop:.2f})")
    if min_cos is not None or drop is None:
        bound = DEFAULT_MIN_COSINE if min_cos is None else min_cos
        cos = r.fidelity.cosine
        ok = ok and cos is not None and math.isfinite(cos) and cos >= bound
        notes.append(f"cosine {cos:.4f} (bound {bound})")
    trial.meets_bound, trial.quality_note = ok, "; ".join(notes)


def _failure(exc: Exception) -> str:
    """A failed candidate's row: the user's problem as said, a crash without PyTorch's
    boilerplate (a step's crash already names the step and the exception)."""
    text = clean_message(str(exc).split("\n\n")[0])
    if isinstance(exc, UserError) or getattr(exc, "step", None):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pick(trials: list[Trial]) -> Optional[Trial]:
    """The fastest trial whose verdict is "faster" (its whole CI clears the threshold) within
    the quality bound: an inconclusive 3x is no recommendation, whatever its point estimate."""
    ok = [t for t in trials if t.meets_bound and t.verdict == "faster"]
    return max(ok, key=lambda t: t.speedup or 0.0) if ok else None


def recommend(loaded: LoadedModel, max_accuracy_drop: Optional[float] = None,
              min_cosine: Optional[float] = None, options: Any = None,
              task: Optional[Task] = None, *, max_candidates: Optional[int] = None,
              include_compile: bool = False,
              candidates: Optional[list[Recipe]] = None) -> Recommendation:
    """Try candidate recipes, return the fastest that keeps quality within the bound.

    The bound is the accuracy drop (default 0.01 = one point) when the test data has labels,
    else the mean cosine of outputs vs the original (default 0.99). Giving `min_cosine` with
    labels checks both. `options` are `RunOptions` (default: a 1 s timing budget per trial).
    Cancelling returns the best so far with `cancelled=True`; it never raises `Cancelled`.
    """
    from .model.usercode import ModelCodeError
    from .run import RunOptions, run_recipe
    task = task or quiet_task()
    if options is None:
        options = RunOptions(time_budget_s=DEFAULT_TIME_BUDGET_S, min_rounds=6, warmup=2)
    labeled = loaded.test is not None and loaded.test.labeled and len(loaded.test) > 0
    if labeled:
        max_drop = DEFAULT_MAX_ACCURACY_DROP if max_accuracy_drop is None else max_accuracy_drop
        min_cos = min_cosine
    else:
        max_drop = None  # no labels: fidelity stands in for accuracy
        min_cos = DEFAULT_MIN_COSINE if min_cosine is None else min_cosine
    bound = {"max_accuracy_drop": max_drop, "min_cosine": min_cos,
             "by": "accuracy" if max_drop is not None else "cosine"}
    if not labeled and max_accuracy_drop is not None:
        bound["note"] = "no labeled test data: the cosine bound is used instead of accuracy"

    plan = list(candidates) if candidates is not None else candidate_recipes(
        loaded, include_compile=include_compile)
    if max_candidates is not None:
        plan = plan[:max(0, max_candidates)]
    rec = Recommendation(best=None, bound=bound, candidates=len(plan),
                         environment=env.environment())
    qat_added = False
    i = 0
    try:
        while i < len(plan):
            recipe = plan[i]
            task.report("recommend", i, len(plan), recipe.describe(), recipe=recipe.to_json())
            trial = Trial(recipe)
            start = time.perf_counter()
            try:
                trial.result = run_recipe(loaded, recipe, options, task)
            except Cancelled:
                raise
            except KeyboardInterrupt:
                raise Cancelled("interrupted") from None
            except Exception as exc:  # a failing candidate is a row, not the end of the search
                if isinstance(exc, ModelCodeError) and not exc.in_copy:
                    raise  # the original itself failing fails every candidate alike
                trial.error = _failure(exc)
            trial.seconds = time.perf_counter() - start
            _judge(trial, max_drop, min_cos)
            rec.trials.append(trial)
            rec.best = _pick(rec.trials)
            # Static INT8 fast but too lossy: QAT may recover the accuracy (labels needed).
            if (not qat_added and trial.result is not None and not trial.meets_bound
                    and any(s.name == "static_int8" for s in recipe.steps)
                    and max_candidates is None):
                qat = _qat_fallback(loaded)
                if qat is not None:
                    plan.insert(i + 1, qat)
                    rec.candidates = len(plan)
                    qat_added = True
            i += 1
        task.report("recommend", len(plan), len(plan), rec.message)
    except Cancelled:
        rec.cancelled = True
    rec.best = _pick(rec.trials)
    return rec
