"""The anytime auto-tune: the fastest recipe QuantGUI finds within the user's quality budget.

Order of the search (likeliest payoff first, so a Stop at any point keeps something useful):

1. recommend's candidates (`candidate_recipes`: the techniques' own hints, CPU-aware), each
   measured with `run_recipe` like every other variant (interleaved timer, paired CI, the
   budget judged by its interval);
2. a numeric format (sensitivity.FORMATS) that was measured, is not slower and misses the
   budget is refined: dynamic INT8 first tries per-token activations (a variant; one that
   holds the budget but is slower than per-tensor INT8 does not end the search), then the
   sensitivity ranking falls back the most sensitive units, k = 1, 2, 4, ... until the budget
   holds, then bisects between the last k that failed and the first that held (the fewest
   units kept); where this CPU computes BF16 natively (AVX512-BF16/AMX) and the format has a
   `bf16` list, the same recipe with those kept units in BF16 instead of FP32 is tried too
   (mixed precision), and the pick keeps whichever is faster within the budget; then that
   format is done;
3. graph / layout / call-mode steps (`STEPS`) are added to the best PyTorch recipe so far (not
   to one that runs in another engine, where they change nothing), one at a time, where
   preflight allows them;
4. the best three within the budget are raced together (recommend's final race), whose winner
   is the pick.

Anytime: the best so far (`pick`: the fastest trial whose verdict is "faster" and that meets the
budget) is always known; a cancel or the time limit stops the search at its next check and the
result holds every trial so far. The trial log (`TrialLog`, JSON lines) lets `resume` skip the
trials already measured for the same model, data and budget.
"""

from __future__ import annotations

from dataclasses import replace
import hashlib
import time
from typing import Any, Callable, Optional

from . import env
from .budget import QualityBudget
from .errors import Cancelled, TooSlow, UserError
from .model.loaded import LoadedModel
from .progress import CancelToken, Task, quiet_task
from .recipe import Recipe, Step
from .results.recommendation import Trial, pick
from .results.tune import TuneResult, TuneTrial
from .run.preflight import DATA_KINDS, preflight, require
from .tune_log import TrialLog, recipe_key

__all__ = ["tune", "TuneOptions", "TuneResult", "TrialLog", "STEPS", "content_hashes"]

#: Steps tried on top of the best so far, in this order (layout, graph, call mode).
STEPS = ("channels_last", "freeze", "inference_mode")
#: Data samples hashed into the log's header (enough to tell one data set from another).
HASH_SAMPLES = 4096
#: Formats whose kept units can run in BF16 instead of FP32 (their `bf16` list parameter).
MIXED_FORMATS = ("dynamic_int8", "static_int8")


class TuneOptions:
    """How the tune measures: `run` the RunOptions of every trial (default: recommend's 1 s per
    trial, 6 rounds, 2 warm-up calls), `candidates` to replace recommend's order (tests,
    scripts), `max_candidates`, `include_compile`, `sensitivity_samples` (evaluation samples of
    the ranking), `steps` (graph/layout/call-mode steps to try on the best), `refine_slower`
    (also refine a format measured slower than the original: off by default, since keeping
    layers in FP32 rarely turns a slower format into a faster one), `capabilities` (the CPU's,
    env.cpu_capabilities() when None: whether kept units are also tried in BF16)."""

    def __init__(self, run: Any = None, candidates: Optional[list[Recipe]] = None,
                 max_candidates: Optional[int] = None, include_compile: bool = False,
                 sensitivity_samples: Optional[int] = None, steps: tuple = STEPS,
                 refine_slower: bool = False,
                 capabilities: Optional[tuple] = None) -> None:
        self.run = run
        self.capabilities = capabilities
        self.candidates = candidates
        self.max_candidates = max_candidates
        self.include_compile = include_compile
        self.sensitivity_samples = sensitivity_samples
        self.steps = tuple(steps)
        self.refine_slower = refine_slower


class _Deadline(CancelToken):
    """The caller's cancel token plus the time limit: either stops the search at its next check."""

    def __init__(self, parent: CancelToken, deadline: Optional[float]) -> None:
        super().__init__()
        self.parent, self.deadline, self.expired = parent, deadline, False

    def cancel(self) -> None:
        self.parent.cancel()

    def _late(self) -> bool:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.expired = True
        return self.expired

    @property
    def cancelled(self) -> bool:
        return self.parent.cancelled or self._late()

    def check(self) -> None:
        self.parent.check()
        if self._late():
            raise Cancelled("time limit reached")


def content_hashes(loaded: LoadedModel) -> tuple[str, str]:
    """sha256 of the model's content (class and every tensor of its state) and of the data the
    trials are judged on (the test data's first `HASH_SAMPLES` samples with labels, else the
    example input): what the trial log's header names."""
    import torch

    def add(h: Any, t: Any) -> None:
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            try:
                h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            except (RuntimeError, TypeError):  # quantized or otherwise opaque
                h.update(repr(t).encode())
    model = hashlib.sha256(type(loaded.module).__qualname__.encode())
    for key, value in loaded.module.state_dict().items():
        model.update(key.encode())
        add(model, value)
    data = hashlib.sha256()
    test = loaded.test
    if test is not None and len(test) > 0:
        data.update(f"test {len(test)}".encode())
        for ids, inputs, labels in test.indexed_batches(256, -(-HASH_SAMPLES // 256)):
            for t in list(inputs.args) + list(inputs.kwargs.values()):
                add(data, t)
            add(data, labels)
    elif loaded.example is not None:
        data.update(b"example")
        for t in loaded.example.tensors():
            add(data, t)
    return model.hexdigest(), data.hexdigest()


def _format_step(recipe: Recipe) -> Optional[int]:
    from .sensitivity import FORMATS
    return next((i for i, s in enumerate(recipe.steps) if s.name in FORMATS), None)


def _with_params(recipe: Recipe, index: int, **params: Any) -> Recipe:
    steps = [Step(s.name, dict(s.params)) for s in recipe.steps]
    steps[index].params.update(params)
    return Recipe(steps)


def _with_step(recipe: Recipe, name: str) -> Recipe:
    """`recipe` with step `name` inserted where its stage puts it."""
    from .techniques import get
    stage = get(name).stage
    steps = [Step(s.name, dict(s.params)) for s in recipe.steps]
    at = next((i for i, s in enumerate(steps) if get(s.name).stage > stage), len(steps))
    return Recipe(steps[:at] + [Step(name)] + steps[at:])


def _allowed(loaded: LoadedModel, recipe: Recipe) -> bool:
    return not any(p.kind not in DATA_KINDS for p in preflight(loaded, recipe))


def _slower(a: TuneTrial, b: TuneTrial) -> bool:
    """Trial `a`'s speedup is below `b`'s (point estimates; a missing one counts as slower)."""
    return (a.trial.speedup or 0.0) < (b.trial.speedup or 0.0)


class _Search:
    """One tune: the trials so far, the log, and how one more trial is measured (or read)."""

    def __init__(self, loaded: LoadedModel, budget: QualityBudget, options: Any, task: Task,
                 log: Optional[TrialLog], on_trial: Optional[Callable[[TuneTrial], None]],
                 result: TuneResult) -> None:
        self.loaded, self.budget, self.options, self.task = loaded, budget, options, task
        self.log, self.on_trial, self.result = log, on_trial, result
        self.done: dict[str, int] = {}  # recipe key -> trial index (no recipe measured twice)
        self.capabilities: tuple = tuple(env.cpu_capabilities())

    def measure(self, recipe: Recipe, **how: Any) -> int:
        """Run (or read from the log) one trial; its index in the result."""
        from .model.usercode import ModelCodeError
        from .recommend import _failure, _judge
        from .run import run_recipe
        key = recipe_key(recipe)
        if key in self.done:
            return self.done[key]
        self.task.check()
        n = len(self.result.trials)
        old = self.log.lookup(key) if self.log is not None else None
        if old is not None:
            entry = replace(TuneTrial.from_json(old), from_log=True, **how)
        else:
            self.task.report("tune", n, None, recipe.describe(), recipe=recipe.to_json())
            trial = Trial(recipe)
            start = time.perf_counter()
            try:
                trial.result = run_recipe(self.loaded, recipe, self.options, self.task)
            except Cancelled:
                raise
            except KeyboardInterrupt:
                raise Cancelled("interrupted") from None
            except TooSlow as exc:
                trial.dropped = str(exc)
            except Exception as exc:  # a failing trial is a row, not the end of the search
                if isinstance(exc, ModelCodeError) and not exc.in_copy:
                    raise
                trial.error = _failure(exc)
            trial.seconds = time.perf_counter() - start
            _judge(trial)
            entry = TuneTrial(trial, **how)
            if self.log is not None:
                self.log.append(key, entry)
        self.result.trials.append(entry)
        self.done[key] = n
        if self.on_trial is not None:
            self.on_trial(entry)
        return n

    def trial(self, i: int) -> TuneTrial:
        return self.result.trials[i]

    def refine(self, i: int, samples: Optional[int], slower: bool = False) -> None:
        """A format that missed the budget: a variant, then units kept until it holds."""
        t = self.trial(i)
        at = _format_step(t.trial.recipe)
        if at is None or t.trial.result is None or t.trial.meets_bound \
                or (t.trial.verdict == "slower" and not slower):
            return  # nothing to refine, or keeping layers cannot make it faster
        recipe = t.trial.recipe
        fmt = recipe.steps[at].name
        if fmt == "dynamic_int8" and recipe.steps[at].params.get("activation") in (None, "auto"):
            # per-token activations are torchao's: the torch.ao API and engine choice go
            v = _with_params(recipe, at, activation="per_token")
            for k in ("api", "engine"):
                v.steps[at].params.pop(k, None)
            if _allowed(self.loaded, v):
                j = self.measure(v, stage="variant", format=fmt, base=i)
                if self.trial(j).trial.meets_bound and not _slower(self.trial(j), t):
                    return
                # it holds the budget but lost speed (torchao's per-token kernels are slower in
                # eager mode): keeping a few units out of the faster format may keep more
        self.fall_back(i, at, samples)

    def fall_back(self, i: int, at: int, samples: Optional[int]) -> None:
        from .results.sensitivity import fallback_skip, rank
        from .sensitivity import SAMPLES, sensitivity
        recipe = self.trial(i).trial.recipe
        step = recipe.steps[at]
        params = {k: v for k, v in step.params.items() if k not in ("skip", "bf16")}
        self.task.report("tune", len(self.result.trials), None,
                         f"ranking the layers' sensitivity to {step.name}")
        try:
            report = sensitivity(self.loaded, step.name, params, samples=samples or SAMPLES,
                                 batch_size=self.options.batch_size,
                                 task=Task(None, self.task.cancel_token))
        except UserError as exc:
            self.result.notes.append(f"{step.name}: no fallback ({exc})")
            return
        if report.cancelled:
            raise Cancelled("cancelled")
        order = rank(report)
        units = len(order)

        def attempt(k: int, base: int) -> tuple[int, bool]:
            kept = order[:k]
            r = _with_params(recipe, at, skip=fallback_skip(report, k))
            j = self.measure(r, stage="fallback", format=step.name, kept=kept, base=base)
            return j, self.trial(j).trial.meets_bound
        failed, k, held = i, 1, None
        while k < units:  # keeping every unit is the original: never worth a trial
            j, ok = attempt(k, failed)
            if ok:
                held = (k, j)
                break
            if k >= units - 1:
                break
            # all but one unit is the last try (7 units: 1, 2, 4, 6, not 1, 2, 4 and stop)
            failed, k = j, min(k * 2, units - 1)
        if held is None:
            return
        lo = len(self.trial(failed).kept)
        hi, fewest = held
        while hi - lo > 1:  # the fewest units that keep the budget
            mid = (lo + hi) // 2
            j, ok = attempt(mid, failed)
            if ok:
                hi, fewest = mid, j
            else:
                lo, failed = mid, j
        self.mixed(fewest)

    def mixed(self, i: int) -> None:
        """Trial `i` (units kept in FP32 that hold the budget) with those units in BF16:
        faster where the CPU computes BF16 natively, usually as faithful as FP32. Not tried
        where BF16 is emulated (slower than FP32 there), said once in the notes."""
        from .techniques.hooks import fast_formats
        t = self.trial(i)
        at = _format_step(t.trial.recipe)
        if at is None or t.trial.recipe.steps[at].name not in MIXED_FORMATS:
            return
        if "bf16" not in fast_formats(self.capabilities):
            note = ("kept units stay in FP32: this CPU has no native BF16 (AVX512-BF16/AMX), "
                    "so mixed precision was not tried")
            if note not in self.result.notes:
                self.result.notes.append(note)
            return
        r = _with_params(t.trial.recipe, at, bf16=["*"])
        if _allowed(self.loaded, r):
            self.measure(r, stage="mixed", format=t.format, kept=list(t.kept), base=i)

    def best_in_torch(self) -> Optional[int]:
        """The best trial (`pick`) among those PyTorch runs: PyTorch's graph, layout and
        call-mode steps change nothing in another engine (ONNX Runtime, OpenVINO), while the
        best PyTorch recipe may still gain from them (the digits MLP's static INT8: 6.2x, with
        freeze 9.0x, past ONNX Runtime's 6.9x)."""
        from .techniques import get
        mine = [t.trial for t in self.result.trials
                if not any(get(s.name).outside_torch for s in t.trial.recipe.steps)]
        chosen = pick(mine)
        return None if chosen is None else next(
            i for i, t in enumerate(self.result.trials) if t.trial is chosen)

    def add_steps(self, steps: tuple) -> None:
        for name in steps:
            best = self.best_in_torch()
            if best is None:
                return
            recipe = self.trial(best).trial.recipe
            if any(s.name == name for s in recipe.steps):
                continue
            candidate = _with_step(recipe, name)
            if _allowed(self.loaded, candidate):
                t = self.trial(best)
                self.measure(candidate, stage="step", format=t.format, kept=list(t.kept),
                             base=best, added=name)


def _final_race(loaded: LoadedModel, result: TuneResult, run: Any, task: Task,
                token: "_Deadline") -> Optional[Any]:
    """recommend's final race over the tune's best few (one interleaved run decides between
    them, not their separate timings); a time limit reached during it keeps the pick by those
    timings and says so, a cancel stops the tune."""
    from .recommend import final_race
    try:
        return final_race(loaded, [t.trial for t in result.trials], run,
                          Task(task.on_progress, token))
    except Cancelled:
        if task.cancel_token.cancelled:
            raise
        result.notes.append("the final race did not fit in the time limit: the pick is the "
                            "fastest by its own timing")
        return None


def tune(loaded: LoadedModel, budget: Optional[QualityBudget] = None, options: Any = None,
         task: Optional[Task] = None, log_path: Any = None, resume: bool = False,
         time_limit_s: Optional[float] = None,
         on_trial: Optional[Callable[[TuneTrial], None]] = None, log: Any = None) -> TuneResult:
    """Search for the fastest recipe within `budget` (see the module's docstring). `options` is
    a `TuneOptions`; `log_path` a JSON-lines trial log (refused when it exists unless `resume`;
    with `resume`, a log of another model, data or budget is refused in one line). A cancel or
    `time_limit_s` returns the trials so far with `cancelled=True`; it never raises `Cancelled`.
    `on_trial(TuneTrial)` is called after each trial (also those read from the log). `log`, an
    open log instead of `log_path` (`lookup`, `append`, `close`, `path`, `torn`): a cluster
    node's, whose file is the driver's (cluster/tune_worker.py)."""
    from .recommend import SLOW_CAP, budget_for, candidate_recipes
    from .run import RunOptions
    started = time.perf_counter()
    task = task or quiet_task()
    options = options if isinstance(options, TuneOptions) else TuneOptions(run=options)
    if time_limit_s is not None and not time_limit_s > 0:
        raise UserError(f"time limit must be more than 0 s, got {time_limit_s}")
    require(preflight(loaded, Recipe()))  # labels the model cannot score: said once
    budget, note = budget_for(loaded, budget=budget)
    run = options.run or RunOptions(time_budget_s=1.0, min_rounds=6, warmup=2)
    run = replace(run, budget=budget, slow_cap=SLOW_CAP if run.slow_cap is None else run.slow_cap)
    if log is None and log_path is not None:
        model_hash, data_hash = content_hashes(loaded)
        log = TrialLog.open(log_path, model_hash, data_hash, budget, resume)
    plan = list(options.candidates) if options.candidates is not None else candidate_recipes(
        loaded, include_compile=options.include_compile)
    if options.max_candidates is not None:
        plan = plan[:max(0, options.max_candidates)]
    result = TuneResult(budget, candidates=len(plan), environment=env.environment(),
                        log=None if log is None else str(log.path))
    if note:
        result.notes.append(note)
    if log is not None and log.torn:
        result.notes.append(f"{log.path}: a torn last line was ignored (an interrupted write)")
    token = _Deadline(task.cancel_token, None if time_limit_s is None
                      else time.monotonic() + time_limit_s)
    search = _Search(loaded, budget, run, Task(task.on_progress, token), log, on_trial, result)
    if options.capabilities is not None:
        search.capabilities = tuple(options.capabilities)
    try:
        for recipe in plan:
            at = _format_step(recipe)
            i = search.measure(recipe, format=None if at is None else recipe.steps[at].name)
            search.refine(i, options.sensitivity_samples, options.refine_slower)
        search.add_steps(options.steps)
        result.race = _final_race(loaded, result, run, task, token)
        task.report("tune", len(result.trials), len(result.trials), result.message)
    except Cancelled:
        result.cancelled = True
        result.stopped = "time limit" if token.expired and not task.cancel_token.cancelled \
            else "cancelled"
    finally:
        if log is not None:
            log.close()
    result.seconds = time.perf_counter() - started
    return result
