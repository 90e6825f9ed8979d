"""Per-layer latency, before vs after, for one configuration: forward hooks on every leaf
module time each call (grouped by the module's path, so a Linear replaced by its INT8 version
lines up with the original), and the time outside them is its own row. A variant that is one
opaque graph (TorchScript, compiled) has no leaves to hook: all its time is "outside layers"."""

from __future__ import annotations

import math
import time
from typing import Any, Optional

import torch

from ..progress import Task, quiet_task
from ..results.profile import LayerProfile, LayerTime


def _leaves(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """The modules timed: those without children of their own, where a child whose name
    starts with "_" is storage, not a layer (a dynamic INT8 Linear keeps its weights in
    `_packed_params`: the Linear is the layer, timed at the original's path)."""
    def layer(name: str, m: torch.nn.Module) -> bool:
        return bool(name) and not name.rpartition(".")[2].startswith("_") and not any(
            not child.startswith("_") for child, _ in m.named_children())
    return [(n, m) for n, m in module.named_modules() if layer(n, m)]


def _profile_side(variant: Any, inputs: Any, calls: int, task: Task,
                  names: Optional[Any] = None) -> tuple[float, dict[str, tuple[str, float]]]:
    """(mean ms per call, {layer path: (class name, mean ms per call)}). `names`: hook these
    modules instead of the leaves (a quantized Linear's leaf is its packed-weights holder,
    which its forward never calls)."""
    prepared = variant.prepare(inputs)
    spent: dict[str, float] = {}
    starts: dict[str, float] = {}
    handles = []
    module = variant.module if isinstance(variant.module, torch.nn.Module) else None
    leaves = _leaves(module) if module is not None else []
    if names is not None and module is not None:
        wanted = set(names)
        leaves = [(n, m) for n, m in module.named_modules() if n in wanted]
    for name, m in leaves:
        def pre(_m: Any, _a: Any, name: str = name) -> None:
            starts[name] = time.perf_counter()

        def post(_m: Any, _a: Any, _o: Any, name: str = name) -> None:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - starts.pop(name)
        handles.append(m.register_forward_pre_hook(pre))
        handles.append(m.register_forward_hook(post))
    try:
        variant.run_prepared(prepared)  # warm: allocations and first-call work are not layers
        spent.clear()
        t0 = time.perf_counter()
        for _ in range(calls):
            task.check()
            variant.run_prepared(prepared)
        total = (time.perf_counter() - t0) / calls * 1e3
    finally:
        for h in handles:
            h.remove()
    kinds = {n: type(m).__name__ for n, m in leaves}
    return total, {n: (kinds[n], s / calls * 1e3) for n, s in spent.items()}


def profile_layers(loaded: Any, recipe: Any, batch: int, threads: int, calls: int = 20,
                   task: Optional[Task] = None) -> LayerProfile:
    from ..run.runner import batched_example, optimize, torch_threads
    from ..sweep import recipe_name
    task = task or quiet_task()
    quiet = Task(None, task.cancel_token)
    task.report("profile", 0, 3, "applying the recipe")
    after = (optimize(loaded, recipe, None, quiet)[0] if recipe.steps
             else loaded.baseline().copy())
    with torch_threads(threads) as used:
        example = batched_example(loaded, batch)
        task.report("profile", 1, 3, f"profiling the original, {calls} calls")
        total_b, before = _profile_side(loaded.baseline(), example, calls, quiet)
        task.report("profile", 2, 3, f"profiling the optimized model, {calls} calls")
        total_a, later = _profile_side(after, example, calls, quiet)
    task.report("profile", 3, 3, "profile done")
    rows = []
    for name in dict.fromkeys(list(before) + list(later)):
        kb, tb = before.get(name, ("", math.nan))
        ka, ta = later.get(name, ("", math.nan))
        rows.append(LayerTime(name, kb, ka, tb, ta))
    # Time outside every hooked layer: the glue between them, or the whole of an opaque graph.
    outside_b = total_b - sum(t for _, t in before.values())
    outside_a = total_a - sum(t for _, t in later.values())
    rows.append(LayerTime("", "", "", max(outside_b, 0.0), max(outside_a, 0.0)))
    return LayerProfile(recipe_name(recipe), batch, used, calls, total_b, total_a, rows)
