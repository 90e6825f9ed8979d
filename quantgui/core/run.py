"""Running a recipe: optimize a private copy, then measure it against the untouched original.

`optimize` applies the steps; `run_recipe` adds the honest part: sizes, interleaved timing,
accuracy and fidelity of before vs after on the same batch and thread count, and a verdict
that says why when the result is not faster. The user's module is never modified.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import torch

from . import env, measure, memory
from .errors import Cancelled, UserError, clean_message
from .inputs import Inputs
from .model import LoadedModel
from .params import to_dict
from .progress import Task, quiet_task
from .recipe import Recipe
from .safeload import short_reason
from .techniques.base import StepContext
from .usercode import ModelCodeError
from .variant import Variant


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


@dataclass
class StepReport:
    name: str
    params: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": dict(self.params), "notes": list(self.notes),
                "metrics": dict(self.metrics), "seconds": self.seconds}


@dataclass
class Measurement:
    size_bytes: Optional[int]
    memory_bytes: Optional[int]
    latency: measure.LatencyStats
    accuracy: Optional[float] = None

    def to_json(self) -> dict[str, Any]:
        return {"size_bytes": self.size_bytes, "memory_bytes": self.memory_bytes,
                "latency_ms": self.latency.to_json(), "accuracy": self.accuracy}


@dataclass
class RunResult:
    before: Measurement
    after: Measurement
    timing: measure.Timing
    size_ratio: Optional[float]
    fidelity: measure.Fidelity
    verdict: measure.Verdict
    steps: list[StepReport]
    environment: dict[str, Any]
    recipe: Recipe
    batch_size: int
    threads: int
    source: str = ""
    variant: Optional[Variant] = None  # the optimized model; not serialized

    @property
    def speedup(self) -> dict[str, Any]:
        return {"median": self.timing.speedup, "ci95": list(self.timing.ci95)}

    @property
    def noisy(self) -> bool:
        return self.timing.noisy

    @property
    def noisy_reason(self) -> Optional[str]:
        return self.timing.noisy_reason

    def to_json(self) -> dict[str, Any]:
        """A dict `json.dumps(..., allow_nan=False)` accepts (non-finite numbers become None)."""
        data = json_safe({
            "source": self.source,
            "recipe": self.recipe.to_json(),
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "speedup": self.timing.speedup_json(),
            "size_ratio": self.size_ratio,
            "fidelity": self.fidelity.to_json(),
            "verdict": self.verdict.to_json(),
            "noisy": self.timing.noisy,
            "noisy_reason": self.timing.noisy_reason,
            "batch_size": self.batch_size,
            "threads": self.threads,
            "steps": [s.to_json() for s in self.steps],
            "environment": self.environment,
        })
        data["verdict"]["headline"] = measure.headline_of(data)
        return data


def json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return json_safe(value.item())
    if hasattr(value, "item"):  # numpy scalars
        return json_safe(value.item())
    return str(value)


def batched_example(loaded: LoadedModel, batch_size: Optional[int]) -> Inputs:
    """The example at the requested batch: sliced, taken from the test data, or repeated."""
    example = loaded.example
    if example is None:  # opened for inspection only (open_model(need_example=False))
        from .loading import NO_EXAMPLE
        raise UserError(f"{loaded.info.source}: {NO_EXAMPLE}")
    if batch_size is None or batch_size == example.batch_size:
        return example
    if batch_size < 1:
        raise UserError(f"batch size must be at least 1, got {batch_size}")
    if example.batch_size >= batch_size:
        return example.slice(0, batch_size)
    if loaded.test is not None and len(loaded.test) >= batch_size:
        return loaded.test.inputs.slice(0, batch_size)  # real samples beat repeated ones
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


def optimize(loaded: LoadedModel, recipe: Recipe, options: Optional[RunOptions] = None,
             task: Optional[Task] = None) -> tuple[Variant, list[StepReport]]:
    """Apply the recipe to a private deep copy of the model; the original stays untouched."""
    options = options or RunOptions()
    task = task or quiet_task()
    resolved = recipe.validate()
    # Check every step before any work: a calibration that runs for minutes and then meets an
    # inapplicable last step wastes the user's time.
    for i, (tech, _) in enumerate(resolved, 1):
        reason = tech.applies_to(loaded.module)
        if reason:
            raise UserError(f"step {i} ({tech.name}): does not apply to this model: {reason}")
        if tech.needs_labels and (loaded.train is None or not loaded.train.labeled):
            raise UserError(f"step {i} ({tech.name}): needs labeled training data "
                            f"(give a data file with 'labels')")
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
        reports.append(StepReport(tech.name, to_dict(params), list(ctx.notes),
                                  dict(ctx.metrics), time.perf_counter() - start))
    task.report("apply", n, n, "steps applied")
    return variant, reports


def run_recipe(loaded: LoadedModel, recipe: Recipe, options: Optional[RunOptions] = None,
               task: Optional[Task] = None) -> RunResult:
    """Optimize, then measure before vs after on the same batch and thread count."""
    options = options or RunOptions()
    task = task or quiet_task()
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
            warmup=options.warmup, seed=options.seed, task=task)

        data = loaded.test
        if data is not None and len(data) > 0:
            bs = example.batch_size
            evaluation = measure.evaluate(before, after, data.batches(bs, options.eval_limit),
                                          data.num_batches(bs, options.eval_limit), data.name, task)
        else:  # no data: fidelity on the example input still tells whether outputs changed
            evaluation = measure.evaluate(before, after, [(example, None)], 1, "example input",
                                          task)

        result_verdict = measure.verdict(timing, steps, after, loaded.module, example.batch_size,
                                         evaluation.before_accuracy, evaluation.after_accuracy,
                                         evaluation.fidelity)
        environment = env.environment()
    return RunResult(
        before=Measurement(size_b, mem_b, timing.before, evaluation.before_accuracy),
        after=Measurement(size_a, mem_a, timing.after, evaluation.after_accuracy),
        timing=timing,
        size_ratio=(size_a / size_b) if size_a is not None and size_b else None,
        fidelity=evaluation.fidelity, verdict=result_verdict, steps=steps,
        environment=environment, recipe=recipe, batch_size=example.batch_size, threads=threads,
        source=loaded.info.source if loaded.info is not None else "", variant=after)


# --- text summary (no Qt, no rich terminal: plain aligned columns) ---------------------------

def mb(n: Optional[int]) -> str:
    return "-" if n is None else f"{n / 1e6:.2f} MB"


def pct(x: Optional[float]) -> str:
    return "-" if x is None else f"{100 * x:.2f}%"


def num(x: Optional[float], fmt: str = ".4f") -> str:
    if x is None:
        return "-"
    return format(x, fmt) if math.isfinite(x) else str(x)  # inf, -inf, nan


def table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(map(len, rows)))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def format_result(result: Any) -> str:
    """The before/after text table (`quantgui-cli run` prints it; reports may reuse it)."""
    b, a, t, f, v = result.before, result.after, result.timing, result.fidelity, result.verdict

    def lat(s: Any) -> str:
        return f"{s.median_ms:.3f} ms [{s.p10_ms:.3f}-{s.p90_ms:.3f}]"
    ratio = "-" if result.size_ratio is None else f"{result.size_ratio:.2f}x"
    lines = [f"model: {result.source or '-'}    recipe: {result.recipe.describe()}",
             f"batch {result.batch_size}, {result.threads} thread(s), torch "
             f"{result.environment.get('torch')}, {result.environment.get('cpu') or 'cpu'}",
             "",
             table([("", "before", "after", ""),
                    ("size (saved)", mb(b.size_bytes), mb(a.size_bytes), f"ratio {ratio}"),
                    ("size (memory)", mb(b.memory_bytes), mb(a.memory_bytes), ""),
                    ("latency median [p10-p90]", lat(b.latency), lat(a.latency),
                     f"{t.rounds} interleaved rounds"),
                    ("first call", f"{b.latency.first_call_ms:.1f} ms",
                     f"{a.latency.first_call_ms:.1f} ms", ""),
                    ("accuracy", pct(b.accuracy), pct(a.accuracy), "")]),
             "",
             f"speedup: {t.speedup:.2f}x (95% CI {t.ci95[0]:.2f}-{t.ci95[1]:.2f})",
             f"fidelity: top-1 agreement {pct(f.top1_agreement)}, cosine {num(f.cosine)} "
             f"(min {num(f.cosine_min)}), max abs error {num(f.max_abs_error, '.4g')}, SQNR "
             + ("inf (identical)" if math.isinf(f.sqnr_db) and f.sqnr_db > 0
                else f"{num(f.sqnr_db, '.1f')} dB"),
             f"verdict: {v.summary.replace(v.label, v.label.upper(), 1)}"]
    if v.inconclusive_reason:
        again = (f" (run again with --time-budget {v.suggested_budget_s:g})"
                 if v.suggested_budget_s else "")
        lines.append(f"  ? {v.inconclusive_reason}{again}")
    lines += [f"  - {r}" for r in v.reasons]
    lines += [f"  ! {w}" for w in v.warnings]
    said = v.reasons + v.warnings + [v.inconclusive_reason or ""]
    if t.noisy and not any("noisy" in r for r in said):
        lines.append(f"  ! noisy measurement: {t.noisy_reason}")
    if result.steps:
        lines.append("steps:")
        for i, s in enumerate(result.steps, 1):
            params = ", ".join(f"{k}={'auto' if val is None else val}"
                               for k, val in s.params.items())
            lines.append(f"  {i}. {s.name}" + (f" ({params})" if params else "")
                         + f"  {s.seconds:.2f} s")
            lines += [f"     - {n}" for n in s.notes]
            if s.metrics:
                lines.append("     " + ", ".join(f"{k}={val}" for k, val in s.metrics.items()))
    return "\n".join(lines)
