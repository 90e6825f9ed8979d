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

import math
import time
from typing import Any, Callable, Optional

from torch import nn

from . import env
from .errors import Cancelled, UserError, clean_message
from .model.loaded import LoadedModel
from .progress import Task, quiet_task
from .recipe import Recipe
from .techniques.hooks import ModelTraits, fast_formats  # noqa: F401 - fast_formats is re-exported
from .results import Recommendation, Trial, pick
from .run.preflight import DATA_KINDS, preflight, require

DEFAULT_MAX_ACCURACY_DROP = 0.01
DEFAULT_MIN_COSINE = 0.99
#: Per-candidate timing budget: enough for a CI that separates 1.2x from 1.0x on a quiet CPU.
DEFAULT_TIME_BUDGET_S = 1.0

_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)


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
    the engine's preflight finds nothing that rules them out (a step that does
    not apply, a missing label, an invalid recipe)."""
    from .techniques import all_techniques
    caps = env.cpu_capabilities() if capabilities is None else list(capabilities)
    module = loaded.module
    traits = model_traits(module)
    techs = all_techniques()
    hints = [h for tech in techs.values() for h in tech.recommend_hints(traits, caps)
             if include_compile or not h.costly]
    hints.sort(key=lambda h: h.priority)  # stable: equal priorities keep registry order
    out: list[Recipe] = []
    seen: set[tuple[str, ...]] = set()
    for hint in hints:
        names = hint.steps
        if names in seen:
            continue
        seen.add(names)
        recipe = Recipe.of(*names)
        # The data's own problems (labels) are the same for every candidate: recommend
        # refuses those once; here only what rules this recipe out counts.
        if any(p.kind not in DATA_KINDS for p in preflight(loaded, recipe)):
            continue
        out.append(recipe)
    return out


def _qat_fallback(loaded: LoadedModel) -> Optional[Recipe]:
    """QAT recovers accuracy static INT8 lost; only worth its training time when that happened."""
    recipe = Recipe.of("qat_int8", "inference_mode")
    return None if any(p.kind not in DATA_KINDS for p in preflight(loaded, recipe)) else recipe


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


def recommend(loaded: LoadedModel, max_accuracy_drop: Optional[float] = None,
              min_cosine: Optional[float] = None, options: Any = None,
              task: Optional[Task] = None, *, max_candidates: Optional[int] = None,
              include_compile: bool = False,
              candidates: Optional[list[Recipe]] = None,
              on_trial: Optional[Callable[[Trial], None]] = None) -> Recommendation:
    """Try candidate recipes, return the fastest that keeps quality within the bound.

    The bound is the accuracy drop (default 0.01 = one point) when the test data has labels,
    else the mean cosine of outputs vs the original (default 0.99). Giving `min_cosine` with
    labels checks both. `options` are `RunOptions` (default: a 1 s timing budget per trial).
    Cancelling returns the best so far with `cancelled=True`; it never raises `Cancelled`.
    `on_trial(trial)` is called as each candidate ends (the engine process streams them).
    """
    from .model.usercode import ModelCodeError
    from .run import RunOptions, run_recipe
    task = task or quiet_task()
    # Labels the model cannot score would fail every candidate alike: said once, up front.
    require(preflight(loaded, Recipe()))
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
            rec.best = pick(rec.trials)
            if on_trial is not None:
                on_trial(trial)
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
    rec.best = pick(rec.trials)
    return rec
