"""Per-layer sensitivity: which layers a numeric format hurts, and what each costs in time.

For one format (dynamic_int8, static_int8, weight_only_int8, weight_only_int4, bf16) and the
model's layers that format converts, grouped into units (a transformer block such as
`encoder.layer.3` is one unit unless `expand`; every other layer is its own), it measures:

- the quality when ONLY that unit is converted, and when ALL BUT it are (the format's own
  technique with a skip list: every other unit skipped / this one skipped), against the
  original on the evaluation data: the accuracy change with its paired 95% interval when the
  data has labels, always the fidelity (cosine, top-1 agreement, SQNR);
- each unit's share of the model's time per call, before (FP32) and after (every unit
  converted), with forward hooks on its layers (measure/profile.py).

Anytime and cancellable: the task is checked between units and during each conversion; a
"sensitivity" progress event per unit, `on_unit(UnitSensitivity)` as each is done; on cancel
the units measured so far come back with `cancelled=True`. A complete report is cached per
model content + data + format + parameters (JSON under the user's cache dir, written
atomically); a cache hit says so (`cached=True`) and measures nothing.

The format's choices that `auto` would measure again on every conversion (dynamic/static INT8's
API and quantized engine) are pinned from the first, full conversion, so every unit is measured
with the same kernels.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch import nn

from .errors import Cancelled, UserError
from .layer_names import escape
from .measure.quality import FidelityAccumulator, token_mask
from .progress import Task, quiet_task
from .recipe import Recipe, Step
from .results.sensitivity import (SensitivityReport, UnitQuality, UnitSensitivity,
                                  fallback_skip, rank)

__all__ = ["FORMATS", "sensitivity", "rank", "fallback_skip", "units_of", "cache_path"]

FORMATS = ("dynamic_int8", "static_int8", "weight_only_int8", "weight_only_int4", "bf16")
#: Evaluation samples by default: enough for a stable cosine and a first accuracy interval,
#: few enough that a unit costs two conversions and two short passes.
SAMPLES = 256
#: Calls per side when timing each layer's share.
PROFILE_CALLS = 10
#: 2: per-token fidelity counts the real tokens only (measure.quality.token_mask).
CACHE_VERSION = 2
#: A path part that numbers the blocks of a transformer ("encoder.layer.3", "h.11",
#: "model.layers.0", "blocks.2").
_BLOCK = re.compile(r"^(.*?(?:^|\.)(?:layer|layers|h|blocks|block)\.\d+)(?:\.|$)")


def units_of(layers: list[str], expand: bool = False) -> dict[str, list[str]]:
    """Unit name -> its layers, in model order: layers inside a numbered transformer block form
    one unit named by the block (unless `expand`), every other layer is its own unit."""
    out: dict[str, list[str]] = {}
    for name in layers:
        match = None if expand else _BLOCK.match(name)
        out.setdefault(match.group(1) if match else name, []).append(name)
    return out


def _fingerprint(module: nn.Module, batches: list, fmt: str, params: dict, expand: bool,
                 samples: int, batch: int) -> str:
    """sha256 of the model's content (class, every tensor of its state), the evaluation data,
    the format and its parameters."""
    h = hashlib.sha256()
    h.update(json.dumps([CACHE_VERSION, torch.__version__, type(module).__qualname__, fmt,
                         params, expand, samples, batch], sort_keys=True,
                        default=str).encode())

    def add(t: Any) -> None:
        if isinstance(t, torch.Tensor):
            t = t.detach().cpu()
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            try:
                h.update(t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
            except (RuntimeError, TypeError):  # a quantized or otherwise opaque tensor
                h.update(repr(t.tolist() if t.numel() < 4096 else t).encode())
    for key, value in module.state_dict().items():
        h.update(key.encode())
        add(value)
    for ids, inputs, labels in batches:
        for t in list(inputs.args) + list(inputs.kwargs.values()):
            add(t)
        add(labels)
    return h.hexdigest()


def cache_path(key: str) -> Path:
    from .examples import cache_dir
    return cache_dir() / "sensitivity" / f"{key}.json"


def _read_cache(key: str) -> Optional[SensitivityReport]:
    path = cache_path(key)
    try:
        from .safeload import read_json
        report = SensitivityReport.from_json(read_json(path, "sensitivity cache"), str(path))
    except (UserError, OSError):
        return None  # absent, unreadable or damaged: measure again
    return report if report.complete else None


def _write_cache(key: str, report: SensitivityReport) -> Optional[str]:
    """Write the report; None, or why it could not be cached (the result stands anyway)."""
    from .export.atomic import write_text_atomic
    path = cache_path(key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, json.dumps(report.to_json(), allow_nan=False))
    except (OSError, UserError) as exc:
        return f"not cached ({path.parent}: {getattr(exc, 'strerror', None) or exc})"
    return None


class _Evaluator:
    """The original's outputs on the evaluation batches, computed once, and each variant's
    quality against them."""

    def __init__(self, loaded: Any, batches: list, task: Task) -> None:
        self.batches = batches
        self.baseline = loaded.baseline()
        self.refs = []
        for _, inputs, _ in batches:
            task.check()
            self.refs.append(self.baseline(inputs))
        self.labeled = all(labels is not None for _, _, labels in batches) and bool(batches)

    def quality(self, variant: Any, task: Task) -> UnitQuality:
        from .measure.paired import accuracy_change
        fid = FidelityAccumulator()
        before, after, labels, ids = [], [], [], []
        for (idx, inputs, lab), ref in zip(self.batches, self.refs):
            task.check()
            out = variant(inputs)
            fid.add(ref, out, token_mask(inputs))
            if self.labeled:
                before.append(ref.argmax(-1))
                after.append(out.argmax(-1))
                labels.append(lab)
                ids.append(idx)
        accuracy = None
        if self.labeled and ref.dim() == 2:
            accuracy = accuracy_change(torch.cat(labels).numpy(), torch.cat(before).numpy(),
                                       torch.cat(after).numpy(), torch.cat(ids).numpy())
            accuracy.flips, accuracy.per_class = [], []  # the report ranks; it lists no samples
        return UnitQuality(fid.result(), accuracy)


def _layer_names(steps: list, module: nn.Module, fmt: str) -> list[str]:
    """The layers the full conversion converted (its `converted_layers` decision; a whole bf16
    cast records none, so its cast layer types are listed)."""
    decided = steps[0].decisions.get("converted_layers") if steps else None
    if decided:
        return list(decided)
    from .techniques.fp16 import CAST_TYPES
    return [n for n, m in module.named_modules() if n and isinstance(m, CAST_TYPES)]


def _pinned(fmt: str, params: dict, decisions: dict) -> dict:
    """Parameters with the choices `auto` made in the full conversion fixed."""
    out = dict(params)
    if fmt == "dynamic_int8" and decisions.get("api") in ("torch.ao", "torchao"):
        out.setdefault("api", decisions["api"])
        if decisions["api"] == "torch.ao" and decisions.get("engine"):
            out.setdefault("engine", decisions["engine"])
    if fmt == "static_int8" and decisions.get("api") in ("fx", "pt2e"):
        out.setdefault("api", decisions["api"])
        if decisions["api"] == "fx" and decisions.get("engine"):
            out.setdefault("engine", decisions["engine"])
    return out


def _time_shares(loaded: Any, full: Any, example: Any, units: dict, task: Task
                 ) -> dict[str, tuple[float, float]]:
    from .measure.profile import _profile_side
    layers = [n for names in units.values() for n in names]
    total_b, before = _profile_side(loaded.baseline(), example, PROFILE_CALLS, task, layers)
    total_a, after = _profile_side(full, example, PROFILE_CALLS, task, layers)

    def share(side: dict, total: float, names: list[str]) -> float:
        spent = sum(side[n][1] for n in names if n in side)
        return spent / total if total > 0 and any(n in side for n in names) else math.nan
    return {u: (share(before, total_b, names), share(after, total_a, names))
            for u, names in units.items()}


def _kind(module: nn.Module, names: list[str], unit: str) -> str:
    kinds = [type(module.get_submodule(n)).__name__ for n in names]
    if names == [unit]:
        return kinds[0]
    counts: dict[str, int] = {}
    for k in kinds:
        counts[k] = counts.get(k, 0) + 1
    return "block: " + ", ".join(f"{n} {k}" for k, n in counts.items())


def sensitivity(loaded: Any, format: str = "dynamic_int8", params: Optional[dict] = None, *,
                expand: bool = False, samples: int = SAMPLES, batch_size: Optional[int] = None,
                task: Optional[Task] = None, use_cache: bool = True,
                on_unit: Optional[Callable[[UnitSensitivity], None]] = None
                ) -> SensitivityReport:
    """Measure each unit of `loaded` under `format` (see the module's docstring)."""
    from .params import build, to_dict
    from .run.runner import RunOptions, batched_example, optimize
    from .techniques import get
    task = task or quiet_task()
    started = time.perf_counter()
    if format not in FORMATS:
        raise UserError(f"--format: {format!r} is not a format sensitivity measures; one of "
                        f"{', '.join(FORMATS)}")
    reason = loaded.info.applicability.get(format) if loaded.info else None
    if reason is None:
        reason = get(format).applies_to(loaded.module)
    if reason:
        raise UserError(f"{format} does not apply to this model: {reason}")
    params = dict(params or {})
    if "skip" in params or "bf16" in params:
        raise UserError("--params: sensitivity chooses the skip list itself (each unit alone, "
                        "each unit left out); leave 'skip' and 'bf16' out")
    build(get(format).Params, params, f"--params ({format})")  # refused before any work
    if not isinstance(samples, int) or samples < 1:
        raise UserError(f"samples must be a whole number from 1, got {samples!r:.40}")
    example = batched_example(loaded, batch_size)
    batch = example.batch_size
    from .data.dataset import Dataset
    data = loaded.test if loaded.test is not None and len(loaded.test) > 0 else \
        Dataset(loaded.example, None, "the example input")
    batches = list(data.indexed_batches(batch, -(-samples // batch)))
    extra = sum(len(ids) for ids, _, _ in batches) - samples
    if extra > 0:  # exactly `samples`: the last batch is cut short
        ids, inputs, labels = batches[-1]
        keep = len(ids) - extra
        batches[-1] = (ids[:keep], inputs.slice(0, keep),
                       labels[:keep] if labels is not None else None)
    count = sum(len(ids) for ids, _, _ in batches)
    data_name = f"{data.name} ({count} sample{'s' if count != 1 else ''})"

    key = _fingerprint(loaded.module, batches, format, params, expand, samples, batch)
    if use_cache:
        hit = _read_cache(key)
        if hit is not None:
            hit.cached = True
            hit.notes = [n for n in hit.notes if not n.startswith("cache:")] + [
                f"cache: read from {cache_path(key)} (nothing measured)"]
            for unit in hit.units:  # a face fills its rows the same way either way
                if on_unit is not None:
                    on_unit(unit)
            task.report("sensitivity", hit.total_units, hit.total_units, "read from the cache")
            return hit

    options = RunOptions(batch_size=batch)
    quiet = Task(None, task.cancel_token)  # conversions' own progress is not this one's

    def convert(p: dict) -> tuple[Any, list]:
        return optimize(loaded, Recipe([Step(format, p)]), options, quiet)

    task.report("sensitivity", 0, None, f"converting every layer to {format}")
    report = SensitivityReport(loaded.info.source if loaded.info else "", format, params,
                               data_name, "fidelity")
    try:
        full, steps = convert(params)
        pinned = _pinned(format, params, steps[0].decisions if steps else {})
        report.params = {k: v for k, v in to_dict(build(get(format).Params, pinned)).items()
                         if k not in ("skip", "bf16")}
        evaluator = _Evaluator(loaded, batches, quiet)
        report.metric = "accuracy" if evaluator.labeled else "fidelity"
        report.full = evaluator.quality(full, quiet)
        units = units_of(_layer_names(steps, loaded.module, format), expand)
        report.total_units = len(units)
        shares = _time_shares(loaded, full, example, units, quiet)
        total_params = sum(p.numel() for p in loaded.module.parameters()) or 1
        names = list(units)
        for i, (unit, layers) in enumerate(units.items()):
            task.report("sensitivity", i, len(units), f"measuring {unit}", unit=unit)
            others = [escape(u) for u in names if u != unit]
            only = evaluator.quality(convert(dict(pinned, skip=others))[0], quiet) \
                if others else report.full
            all_but = evaluator.quality(
                convert(dict(pinned, skip=[escape(unit)]))[0] if others else loaded.baseline(),
                quiet)
            n_params = sum(p.numel() for n in layers
                           for p in loaded.module.get_submodule(n).parameters())
            before, after = shares[unit]
            result = UnitSensitivity(unit, _kind(loaded.module, layers, unit), list(layers),
                                     n_params, n_params / total_params, before, after, only,
                                     all_but)
            report.units.append(result)
            if on_unit is not None:
                on_unit(result)
        task.report("sensitivity", len(units), len(units), "measured")
    except Cancelled:
        report.cancelled = True
    except UserError as exc:  # a conversion's "step 1 (fmt): fmt: why" read as "fmt: why"
        text = str(exc).removeprefix(f"step 1 ({format}): ").removeprefix(f"{format}: ")
        raise UserError(f"{format}: {text}") from exc
    report.seconds = time.perf_counter() - started
    if report.complete and use_cache:
        why = _write_cache(key, report)
        if why:
            report.notes.append(f"cache: {why}")
    return report
