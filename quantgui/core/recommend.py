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
- Other runtimes, where installed (`quantgui[onnx]`, `quantgui[openvino]`): on CPUs without
  VNNI/AMX, ONNX Runtime FP32, ONNX Runtime INT8 per-channel and OpenVINO go before eager INT8
  (pre-packed FP32 GEMMs beat INT8 there); with VNNI/AMX they come after the INT8/BF16 paths.
  AOTInductor, like torch.compile with freezing, is a costly (compiling) candidate.
- `inference_mode` is added to every combination (free, <= 3%).
- compile is left out unless asked: its first call costs 10-30 s per candidate.
"""

from __future__ import annotations

from dataclasses import replace
import time
from typing import Any, Callable, Optional

import torch
from torch import nn

from . import env
from .budget import QualityBudget
from .errors import Cancelled, TooSlow, UserError, clean_message
from .model.loaded import LoadedModel
from .progress import Task, quiet_task
from .recipe import Recipe
from .techniques import hooks
from .techniques.hooks import Hint, ModelTraits, fast_formats  # noqa: F401 - fast_formats re-exported
from .results import Recommendation, Trial, pick
from .results.race import Race
from .verdict_words import FASTER, INCONCLUSIVE
from .run.preflight import DATA_KINDS, preflight, require

DEFAULT_MAX_ACCURACY_DROP = 0.01
DEFAULT_MIN_COSINE = 0.99
#: Per-candidate timing budget: enough for a CI that separates 1.2x from 1.0x on a quiet CPU.
DEFAULT_TIME_BUDGET_S = 1.0
#: A candidate this many times slower than the original after its first calls is dropped.
SLOW_CAP = 3.0

# --- candidates ---------------------------------------------------------------------------------

_RECURRENT = (nn.LSTM, nn.GRU, nn.RNN)
#: A TorchScript module keeps its class's name in `original_name`: it exposes no nn.Conv2d,
#: yet it is a conv net.
_SCRIPTED = {"Linear": "linear", "Conv1d": "conv", "Conv2d": "conv", "Conv3d": "conv",
             "LSTM": "recurrent", "GRU": "recurrent", "RNN": "recurrent",
             "MultiheadAttention": "attention"}


def _kind(m: nn.Module) -> Optional[str]:
    if isinstance(m, torch.jit.ScriptModule):
        name = getattr(m, "original_name", None) or ""
        return _SCRIPTED.get(name, "attention" if name.endswith("SelfAttention") else None)
    if isinstance(m, nn.Linear):  # subclasses too (MHA's out_proj)
        return "linear"
    if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return "conv"
    if isinstance(m, _RECURRENT):
        return "recurrent"
    if isinstance(m, nn.MultiheadAttention) or type(m).__name__.endswith("SelfAttention"):
        return "attention"
    return None


def model_traits(module: nn.Module) -> ModelTraits:
    """The layer counts hints read (also inside TorchScript modules, by their class names)."""
    counts = {"linear": 0, "conv": 0, "recurrent": 0, "attention": 0}
    for m in module.modules():
        kind = _kind(m)
        if kind is not None:
            counts[kind] += 1
    hf = getattr(getattr(module, "config", None), "_attn_implementation", None) is not None
    return ModelTraits(counts["linear"], counts["conv"], counts["recurrent"],
                       counts["attention"], hf)


def _is_program(module: Any) -> bool:
    """A TorchScript or exported program: its layers are not the nn.Module tree hints read."""
    from .techniques import _engines
    return _engines.is_torchscript(module) or _engines.is_exported(module)


#: Compiling steps (10-30 s each, only when asked) and pruning (a quality trade, not a speed one)
#: are never proposed just because they apply.
_COSTLY_ALONE = ("compile", "aoti")
_NEVER_ALONE = ("prune", "inference_mode")


def applicable_hints(loaded: LoadedModel, techs: dict) -> list[Hint]:
    """For a program (TorchScript, exported), whose layer counts say little, every technique
    its own `applies_to` accepts on this model is tried (with inference mode), after the
    hints: e.g. `freeze` on a scripted CNN (1.35x there), which counting nn.Conv2d missed."""
    if not _is_program(loaded.module):
        return []
    info = getattr(loaded, "info", None)
    applicability = getattr(info, "applicability", None) or {}
    out = []
    for name, tech in techs.items():
        reason = applicability[name] if name in applicability else tech.applies_to(loaded.module)
        if reason is None and name not in _NEVER_ALONE and not tech.needs_labels:
            out.append(Hint((name, "inference_mode"), hooks.CALL_MODE - 1,
                            f"{name} applies to this program", costly=name in _COSTLY_ALONE))
    return out


def candidate_recipes(loaded: LoadedModel, capabilities: Optional[list[str]] = None,
                      include_compile: bool = False) -> list[Recipe]:
    """Recipes worth trying on this model and CPU, likeliest winners first (valid ones only).

    Each technique proposes its own candidates (`Technique.recommend_hints`) with a priority on
    the shared scale in techniques/hooks.py; a program (TorchScript, exported) also gets every
    technique its `applies_to` accepts (`applicable_hints`). They are ordered, de-duplicated
    and kept when the engine's preflight finds nothing that rules them out (a step that does
    not apply, a missing label, an invalid recipe)."""
    from .techniques import all_techniques
    caps = env.cpu_capabilities() if capabilities is None else list(capabilities)
    module = loaded.module
    traits = model_traits(module)
    techs = all_techniques()
    hints = [h for tech in techs.values() for h in tech.recommend_hints(traits, caps)
             if include_compile or not h.costly]
    hints += [h for h in applicable_hints(loaded, techs) if include_compile or not h.costly]
    hints.sort(key=lambda h: h.priority)  # stable: equal priorities keep registry order
    out: list[Recipe] = []
    seen: set[str] = set()
    for hint in hints:
        recipe = Recipe.of(*hint.steps)  # names, or (name, params) pairs
        if recipe.describe() in seen:
            continue
        seen.add(recipe.describe())
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

def budget_for(loaded: LoadedModel, max_accuracy_drop: Optional[float] = None,
               min_cosine: Optional[float] = None,
               budget: Optional[QualityBudget] = None) -> tuple[QualityBudget, Optional[str]]:
    """The budget a search judges by, and a note when one asked for cannot be measured.

    `budget` wins; otherwise the legacy arguments (`max_accuracy_drop` a fraction, 0.01 = one
    point). With labeled test data the default is an accuracy drop of one point, without it a
    minimum cosine of 0.99 (an accuracy budget without labels falls back to that cosine)."""
    labeled = loaded.test is not None and loaded.test.labeled and len(loaded.test) > 0
    if budget is None or budget.empty:
        drop = None if max_accuracy_drop is None else 100 * max_accuracy_drop
        budget = QualityBudget(max_accuracy_drop=drop, min_cosine=min_cosine)
    note = None
    if not labeled and budget.max_accuracy_drop is not None:
        note = "no labeled test data: the cosine bound is used instead of accuracy"
        budget = replace(budget, max_accuracy_drop=None)
    if labeled and budget.max_accuracy_drop is None and budget.min_cosine is None \
            and budget.min_agreement is None and budget.min_sqnr is None:
        budget = replace(budget, max_accuracy_drop=100 * DEFAULT_MAX_ACCURACY_DROP)
    if not labeled and budget.empty:
        budget = replace(budget, min_cosine=DEFAULT_MIN_COSINE)
    return budget, note


def _judge(trial: Trial) -> None:
    r = trial.result
    if r is None:
        trial.meets_bound = False
        trial.quality_note = "no result" if trial.dropped is None else "not measured"
        return
    check = r.budget
    trial.meets_bound = bool(check is not None and check.meets and not r.fidelity.nonfinite)
    trial.quality_note = check.words() if check is not None else ""


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
              on_trial: Optional[Callable[[Trial], None]] = None,
              budget: Optional[QualityBudget] = None) -> Recommendation:
    """Try candidate recipes, return the fastest whose interval says faster and that meets the
    quality budget (`budget_for`: by its paired interval, see budget.py); none: keep the
    original.

    `options` are `RunOptions` (default: a 1 s timing budget per trial); a candidate already
    `SLOW_CAP` times slower than the original after its first calls is dropped (the reason is
    in its trial). Cancelling returns the best so far with `cancelled=True`; it never raises
    `Cancelled`. `on_trial(trial)` is called as each candidate ends (the engine process
    streams them).
    """
    from .model.usercode import ModelCodeError
    from .run import RunOptions, run_recipe
    task = task or quiet_task()
    # Labels the model cannot score would fail every candidate alike: said once, up front.
    require(preflight(loaded, Recipe()))
    if options is None:
        options = RunOptions(time_budget_s=DEFAULT_TIME_BUDGET_S, min_rounds=6, warmup=2)
    budget, note = budget_for(loaded, max_accuracy_drop, min_cosine, budget)
    options = replace(options, budget=budget,
                      slow_cap=SLOW_CAP if options.slow_cap is None else options.slow_cap)
    bound = {"max_accuracy_drop": budget.max_accuracy_drop, "min_cosine": budget.min_cosine,
             "by": ("accuracy" if budget.max_accuracy_drop is not None else
                    "cosine" if budget.min_cosine is not None else "fidelity"),
             "budget": budget.to_json(), "words": budget.describe()}
    if note:
        bound["note"] = note

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
            except TooSlow as exc:  # not worth the rest of its timing
                trial.dropped = str(exc)
            except Exception as exc:  # a failing candidate is a row, not the end of the search
                if isinstance(exc, ModelCodeError) and not exc.in_copy:
                    raise  # the original itself failing fails every candidate alike
                trial.error = _failure(exc)
            trial.seconds = time.perf_counter() - start
            _judge(trial)
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
        rec.race = final_race(loaded, rec.trials, options, task)
        rec.best = pick(rec.trials, rec.race)
        task.report("recommend", len(plan), len(plan), rec.message)
    except Cancelled:
        rec.cancelled = True
    rec.best = pick(rec.trials, rec.race)
    return rec


# --- the final race -----------------------------------------------------------------------------

#: How many of the best candidates are raced together at the end.
RACE_SIZE = 3
#: The race's budget, in per-candidate budgets (it insists on measure.race.RACE_ROUNDS rounds).
RACE_BUDGETS = 3.0


def finalists(trials: list[Trial]) -> list[Trial]:
    """The candidates worth racing: within the budget, measured to the end, not slower by their
    interval and above 1x by their point estimate (a slow model's candidates can be
    "inconclusive" for lack of rounds alone), the fastest `RACE_SIZE` by that estimate."""
    ok = [t for t in trials if t.meets_bound and t.result is not None
          and t.verdict in (FASTER, INCONCLUSIVE) and (t.speedup or 0.0) > 1.0]
    top = sorted(ok, key=lambda t: -(t.speedup or 0.0))[:RACE_SIZE]
    # A trial without its variant (read from a tune's log) cannot run again: racing the others
    # without it could crown one its own timing put below it.
    return top if all(t.result.variant is not None for t in top) else []


def final_race(loaded: LoadedModel, trials: list[Trial], options: Any,
               task: Task) -> Optional[Race]:
    """Time the finalists together against the original (measure/race.py), at the search's
    batch and threads; None when there is nothing to decide (no finalist, or one that is
    already "faster" by its own interval)."""
    from .measure.race import race
    from .run.runner import batched_example, torch_threads
    chosen = finalists(trials)
    if not chosen or (len(chosen) == 1 and chosen[0].verdict == FASTER):
        return None
    with torch_threads(options.threads):
        example = batched_example(loaded, options.batch_size)
        return race(loaded.baseline(), {t.recipe.describe(): t.result.variant for t in chosen},
                    example, budget_s=RACE_BUDGETS * options.time_budget_s,
                    warmup=options.warmup, task=task)
