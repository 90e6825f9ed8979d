"""Running a recipe: optimize a private copy, then measure it against the untouched original.

`optimize` applies the steps; `run_recipe` adds the honest part: sizes, interleaved timing,
accuracy and fidelity of before vs after on the same batch and thread count, and a verdict
that says why when the result is not faster. The user's module is never modified.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import time
from typing import Optional

import torch

from .. import env, measure, memory
from ..budget import QualityBudget, judge
from ..errors import Cancelled, UserError, clean_message
from ..model.inputs import Inputs
from ..model.loaded import LoadedModel
from ..model.usercode import ModelCodeError
from ..model.variant import Variant
from ..params import to_dict
from ..progress import Task, quiet_task
from ..recipe import Recipe
from ..safeload import short_reason
from ..techniques.base import StepContext

from ..results import Measurement, RunResult, StepReport
from .preflight import preflight, require


class StepError(RuntimeError):
    """A step crashed (a bug or an unsupported corner of PyTorch); names the step.

    The original exception is chained as `__cause__` so `--debug` shows where it happened.
    """

    def __init__(self, message: str, step: str) -> None:
        super().__init__(message)
        self.step = step


@dataclass
class RunOptions:
    batch_size: Optional[int] = None  # None: the example input's batch
    threads: Optional[int] = None     # None: leave torch's current setting
    time_budget_s: float = 3.5        # timed part of the interleaved measurement
    eval_limit: Optional[int] = None  # cap on evaluation batches (None: the whole test set)
    min_rounds: int = 10
    max_rounds: int = 200
    warmup: int = 3
    seed: int = 0
    #: The quality budget to judge the run by (None: the recipe's own, if it has one).
    budget: Optional[QualityBudget] = None
    #: Stop timing a variant already this many times slower than the original after its
    #: warm-up calls (`measure.TooSlow`); None: time it whatever it costs. Recommend sets 3.
    slow_cap: Optional[float] = None


def batched_example(loaded: LoadedModel, batch_size: Optional[int]) -> Inputs:
    """The example at the requested batch: sliced, taken from the test data, or repeated."""
    example = loaded.example
    if example is None:  # opened for inspection only (open_model(need_example=False))
        from ..opening.loading import NO_EXAMPLE
        raise UserError(f"{loaded.info.source}: {NO_EXAMPLE}")
    if batch_size is None or batch_size == example.batch_size:
        return example
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    if example.batch_size >= batch_size:
        return example.slice(0, batch_size)
    if loaded.test is not None and len(loaded.test) >= batch_size:
        return loaded.test.head(batch_size).inputs  # real samples beat repeated ones
    per_sample = sum(memory.tensor_bytes(t.shape[1:], t.dtype) for t in example.tensors()
                     if t.dim() > 0)
    memory.check_fits(per_sample * batch_size, f"batch {batch_size:,}")

    def repeat(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 0:
            return t
        times = -(-batch_size // t.shape[0])
        return t.repeat(times, *([1] * (t.dim() - 1)))[:batch_size].contiguous()
    return example.map(repeat)


@contextlib.contextmanager
def torch_threads(threads: Optional[int]):
    """Run with `threads` torch threads, never more than the CPUs this process may use (more
    only oversubscribes; tens of thousands crashed torch at exit): see env.cap_threads."""
    previous = torch.get_num_threads()
    if threads is not None:
        if threads < 1:
            raise UserError(f"threads must be at least 1, got {threads}")
        torch.set_num_threads(env.cap_threads(threads))
    try:
        yield torch.get_num_threads()
    finally:
        if torch.get_num_threads() != previous:
            torch.set_num_threads(previous)


def check_labels(loaded: LoadedModel, example: Inputs) -> None:
    """Labels that cannot fit the model's outputs are found before the steps, not after them."""
    data = loaded.test
    if data is None or not data.labeled or len(data) == 0:
        return
    first, _ = next(data.batches(min(example.batch_size, len(data))))
    try:
        out = loaded.baseline()(first)
    except ModelCodeError as exc:
        if not exc.new_input:
            raise
        cause = exc.__cause__ or exc
        raise UserError(f"{data.name}: the model cannot run on these inputs "
                        f"({type(cause).__name__}: {short_reason(cause)})") from exc
    measure.AccuracyCounter(data.name).check(out[:0], data.labels)


def data_details(data, evaluation, before: Variant, after: Variant, batch_size: int,
                 options: RunOptions, task: Task) -> dict:
    """The accuracy change with its paired interval, per class and flips (labeled data), the
    similarity check (sentence pairs with scores) and the samples skipped."""
    from ..measure.paired import accuracy_change
    from ..measure.similarity import similarity_check
    out: dict = {"skipped_samples": data.skipped if data is not None else 0}
    if evaluation.labels is not None and len(evaluation.labels):
        out["accuracy_change"] = accuracy_change(
            evaluation.labels.numpy(), evaluation.pred_before.numpy(),
            evaluation.pred_after.numpy(), evaluation.ids.numpy(), data.classes, data.item,
            options.seed)
    if data is not None and getattr(data, "scores", None) is not None:
        out["similarity"] = similarity_check(before, after, data, batch_size,
                                             options.eval_limit, task)
    return out


def _shape_specialized(*variants: Variant) -> bool:
    return any(v.tags.get("fixed_shape") or isinstance(v.module, torch.jit.ScriptModule)
               for v in variants)


def optimize(loaded: LoadedModel, recipe: Recipe, options: Optional[RunOptions] = None,
             task: Optional[Task] = None) -> tuple[Variant, list[StepReport]]:
    """Apply the recipe to a private deep copy of the model; the original stays untouched."""
    options = options or RunOptions()
    task = task or quiet_task()
    # Check every step before any work: a calibration that runs for minutes and then meets an
    # inapplicable last step wastes the user's time.
    require(preflight(loaded, recipe))
    resolved = recipe.validate()
    example = batched_example(loaded, options.batch_size)
    variant = loaded.baseline().copy()
    reports: list[StepReport] = []
    n = len(resolved)
    for i, (tech, params) in enumerate(resolved, 1):
        task.report("apply", i - 1, n, f"applying {tech.title}", step=tech.name)
        ctx = StepContext(example=example, task=task, batch_size=example.batch_size,
                          train=loaded.train, original=loaded.module)
        start = time.perf_counter()
        try:
            result = tech.apply(variant, params, ctx)
        except (Cancelled, KeyboardInterrupt, ModelCodeError):
            raise
        except UserError as exc:
            if str(exc).startswith(f"step {i} "):
                raise
            raise UserError(f"step {i} ({tech.name}): {exc}") from exc
        except (Exception, SystemExit) as exc:
            # Steps call the model's copy directly too (calibration, tracing): its own code
            # failing there is still the model's problem.
            blamed = variant.code.blame(exc) if variant.code is not None else None
            if blamed is not None:
                raise blamed from exc
            if not isinstance(exc, Exception):
                raise
            raise StepError(f"step {i} ({tech.name}) failed: {type(exc).__name__}: "
                            f"{clean_message(exc)}", tech.name) from exc
        if not isinstance(result, Variant):
            raise StepError(f"step {i} ({tech.name}) returned {type(result).__name__}, "
                            f"not a Variant", tech.name)
        variant = result
        # `decisions`: what the step chose (engine, API, fast path, compile), when the
        # technique says (StepContext.decisions); JSON-safe by contract.
        reports.append(StepReport(tech.name, to_dict(params), list(ctx.notes),
                                  dict(ctx.metrics), time.perf_counter() - start,
                                  decisions=dict(ctx.decisions)))
    task.report("apply", n, n, "steps applied")
    return variant, reports


def run_recipe(loaded: LoadedModel, recipe: Recipe, options: Optional[RunOptions] = None,
               task: Optional[Task] = None) -> RunResult:
    """Optimize, then measure before vs after on the same batch and thread count."""
    options = options or RunOptions()
    task = task or quiet_task()
    require(preflight(loaded, recipe))  # a recipe that cannot run fails before any work
    with torch_threads(options.threads) as threads:
        example = batched_example(loaded, options.batch_size)
        # The original runs once at the run's batch before any step: if it fails there, it
        # fails now and as itself, not minutes later inside a step (or in every candidate).
        loaded.baseline().checked(example)
        check_labels(loaded, example)
        after, steps = optimize(loaded, recipe, options, task)
        # The baseline is what a careful user runs: the original, eval mode, under no_grad.
        before = loaded.baseline()

        size_b = measure.saved_bytes(measure.eager_module(before.module))
        size_a = measure.saved_bytes(measure.eager_module(after.module, after.tags))
        mem_b = measure.memory_bytes(measure.eager_module(before.module))
        mem_a = measure.memory_bytes(measure.eager_module(after.module, after.tags))
        task.report("size", 1, 1, "sizes", before_bytes=size_b, after_bytes=size_a)

        timing = measure.time_interleaved(
            before, after, example, budget_s=options.time_budget_s,
            min_rounds=options.min_rounds, max_rounds=options.max_rounds,
            warmup=options.warmup, seed=options.seed, task=task, slow_cap=options.slow_cap)

        # Timing came first, on the exact batch; evaluation must not feed a shape-specialized
        # model (a fixed-shape runtime graph, a TorchScript baseline whose profiling executor
        # re-specializes on a second shape) a short last batch: then it uses full batches only.
        data = loaded.test
        bs = example.batch_size
        limit = options.eval_limit
        if data is not None and _shape_specialized(before, after) and len(data) % bs \
                and (limit is None or limit > len(data) // bs):
            full = len(data) // bs  # the short last batch would be reached: leave it out
            limit = full
            if full and steps:
                steps[-1].notes.append(
                    f"evaluation used {full * bs} of {len(data)} samples (full batches of "
                    f"{bs} only: the model is specialized to that shape)")
        if data is not None and len(data) > 0 and limit != 0:
            evaluation = measure.evaluate(before, after, data.indexed_batches(bs, limit),
                                          data.num_batches(bs, limit), data.name, task)
        else:  # no data: fidelity on the example input still tells whether outputs changed
            evaluation = measure.evaluate(before, after, [(example, None)], 1, "example input",
                                          task)

        result_verdict = measure.verdict(timing, steps, after, loaded.module, example.batch_size,
                                         evaluation.before_accuracy, evaluation.after_accuracy,
                                         evaluation.fidelity)
        environment = env.environment()
        details = data_details(data, evaluation, before, after, example.batch_size,
                               options, task)
        budget = options.budget if options.budget is not None else recipe.budget
        if budget is not None and not budget.empty:
            details["budget"] = judge(budget, details.get("accuracy_change"),
                                      evaluation.fidelity)
    return RunResult(
        before=Measurement(size_b, mem_b, timing.before, evaluation.before_accuracy),
        after=Measurement(size_a, mem_a, timing.after, evaluation.after_accuracy),
        timing=timing,
        size_ratio=(size_a / size_b) if size_a is not None and size_b else None,
        fidelity=evaluation.fidelity, verdict=result_verdict, steps=steps,
        environment=environment, recipe=recipe, batch_size=example.batch_size, threads=threads,
        source=loaded.info.source if loaded.info is not None else "", variant=after,
        **details)
