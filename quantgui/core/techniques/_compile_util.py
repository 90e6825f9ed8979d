"""Helpers shared by the graph steps (compile, freeze) and the cast steps.

torch.compile has silent traps on these machines (see shared notes, pitfalls 1, 4, 5, 7, 12);
`compile_variant` is the one place that guards against them:

- Dynamo keeps its compiled graphs on the *code object* of the frame it captures, and
  `torch.compile(module)` captures `type(module).forward`, shared by every instance of the class.
  A second instance then reuses or extends the first one's cache (a config changed later is
  ignored; after `recompile_limit` (8) variants the class silently runs eager). We compile a
  small caller function whose code object is cloned per variant, so every compiled variant has
  its own cache and its own recompile budget, and its graphs die with it.
- torchao's `quantize_` flips global inductor settings (set_inductor_config=True); we pass the
  settings we rely on explicitly, per compiled callable, so an earlier step cannot change them.
- `torch._dynamo.reset()` (called by strict `torch.export`) drops every compiled graph: the next
  call recompiles silently. We never call it; `rewarm` lets a caller pay that cost up front.
"""

from __future__ import annotations

import copy
import statistics
import time
import types
from typing import Any, Callable, Optional

import torch
from torch import nn

from ..model.inputs import Inputs, primary_output
from ..model.variant import Variant
from ..progress import Task

#: Inductor settings torchao's recommended_inductor_config_setter flips process-wide; pinned to
#: PyTorch's defaults for our compiles so results do not depend on which step ran before.
_PINNED_DEFAULTS = ("coordinate_descent_tuning", "coordinate_descent_check_all_directions",
                    "force_fuse_int_mm_with_mul")

_counter = 0


# ---------------------------------------------------------------------------------------------
# small shared facts


def eager_module(variant: Variant) -> Any:
    """The plain nn.Module behind a compiled / frozen variant (for sizes, state_dict, export)."""
    return variant.tags.get("eager_module", variant.module)


def has_float_params(model: nn.Module) -> bool:
    return any(p.is_floating_point() for p in model.parameters())


def output_of(variant: Variant, prepared: Inputs) -> torch.Tensor:
    out = primary_output(variant.run_prepared(prepared))
    return out.detach().float() if out.is_floating_point() else out.detach()


def max_rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference relative to the reference's scale (0 means identical)."""
    a, b = a.float(), b.float()
    if a.shape != b.shape:
        return float("inf")
    scale = max(1.0, float(a.abs().max())) if a.numel() else 1.0
    return float((a - b).abs().max()) / scale if a.numel() else 0.0


def time_ratio(base: Callable[[], Any], new: Callable[[], Any], task: Task,
               budget_s: float = 1.0, rounds: int = 5) -> tuple[float, float, float]:
    """(speedup of `new` over `base`, base ms, new ms): medians over interleaved rounds.

    Interleaving cancels most of the drift of a shared machine; a cancel is checked between
    rounds (each round is kept well under ~200 ms where the model allows it).
    """
    base(), new()  # warm both once (allocator, lazy init)
    t0 = time.perf_counter()
    base()
    one = max(time.perf_counter() - t0, 1e-6)
    reps = max(1, min(50, int(budget_s / rounds / 2 / one)))
    ratios, tb, tn = [], [], []
    for _ in range(rounds):
        task.check()
        t0 = time.perf_counter()
        for _ in range(reps):
            base()
        b = (time.perf_counter() - t0) / reps
        task.check()
        t0 = time.perf_counter()
        for _ in range(reps):
            new()
        n = (time.perf_counter() - t0) / reps
        ratios.append(b / n)
        tb.append(b)
        tn.append(n)
    return statistics.median(ratios), statistics.median(tb) * 1e3, statistics.median(tn) * 1e3


# ---------------------------------------------------------------------------------------------
# torch.compile, isolated per variant


def _fresh_caller(module: Any) -> Callable[..., Any]:
    """A function calling `module` whose code object is new (Dynamo's cache lives on it)."""
    global _counter
    _counter += 1

    def call(*args: Any, **kwargs: Any) -> Any:
        return module(*args, **kwargs)

    code = call.__code__.replace(co_name=f"quantgui_compiled_{_counter}")
    return types.FunctionType(code, call.__globals__, code.co_name, call.__defaults__,
                              call.__closure__)


def is_pt2e_graph(module: Any) -> bool:
    """PT2E-quantized graphs (q/dq ops in an fx GraphModule) need freezing set globally."""
    if not isinstance(module, torch.fx.GraphModule):
        return False
    return any("quantized_decomposed" in str(n.target) for n in module.graph.nodes
               if n.op == "call_function")


class CompiledModule(nn.Module):
    """A compiled variant's module: the eager module lives under `_orig_mod` (the same
    state_dict keys torch.compile's OptimizedModule gives), calls go to the compiled caller."""

    def __init__(self, module: nn.Module, compile_kwargs: dict, call_config: dict) -> None:
        super().__init__()
        self._orig_mod = module
        self._compile_kwargs = compile_kwargs
        # PT2E: options={"freezing": True} breaks onednn prepacking (pitfall 2), while the same
        # setting made global around each call works; call_config holds such settings.
        self._call_config = call_config
        self._compiled = torch.compile(_fresh_caller(module), **compile_kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._call_config:
            import torch._inductor.config as inductor_config
            with inductor_config.patch(self._call_config):
                return self._compiled(*args, **kwargs)
        return self._compiled(*args, **kwargs)

    def __deepcopy__(self, memo: dict) -> "CompiledModule":
        # The compiled function closes over the original module: a copy must compile its own
        # (lazily, on its first call) or it would silently keep running the original's weights.
        return CompiledModule(copy.deepcopy(self._orig_mod, memo), dict(self._compile_kwargs),
                              dict(self._call_config))


def _dynamo_counts() -> tuple[int, int, dict]:
    from torch._dynamo.utils import counters
    return (int(counters["stats"].get("unique_graphs", 0)),
            int(sum(counters["graph_break"].values())), dict(counters["graph_break"]))


def compile_variant(variant: Variant, ctx: Any, *, mode: str = "default", freezing: bool = False,
                    dynamic: bool = False, label: str = "torch.compile") -> Variant:
    """Compile `variant.module`, pay the compile on ctx.example now and note what happened.

    Records ctx.metrics["compile_s"] (first call, which includes one forward) apart from the
    steady-state latency the runner measures later.
    """
    import torch._inductor.config as inductor_config

    module = variant.module
    if isinstance(module, nn.Module):
        module.eval()
    prepared = variant.prepare(ctx.example)
    reference = output_of(variant, prepared)  # eager output to check the compiled one against

    options: dict[str, Any] = {}
    call_config: dict[str, Any] = {}
    changed = [k for k in _PINNED_DEFAULTS if hasattr(inductor_config, k)
               and getattr(inductor_config, k) != inductor_config._config[k].default]
    for k in changed:
        options[k] = inductor_config._config[k].default
    if changed:
        ctx.note(f"global inductor settings {', '.join(changed)} were changed by an earlier "
                 f"step (torchao's set_inductor_config?); pinned to PyTorch's defaults here")
    if is_pt2e_graph(module):
        call_config["freezing"] = freezing
        ctx.note("PT2E graph: freezing is set around each call (options= breaks onednn prepack)")
    else:
        options["freezing"] = freezing
    if torch.get_float32_matmul_precision() != "highest":
        ctx.note(f"float32 matmul precision is '{torch.get_float32_matmul_precision()}' in this "
                 f"process (set by an earlier step?): FP32 results may differ slightly")

    dyn = True if dynamic else None  # False = PyTorch's default: static, generalised on a new shape
    if mode != "default":
        # mode and options are exclusive in torch.compile: fold the mode's settings in (they
        # win over the pinned defaults; freezing stays what the user asked).
        from torch._inductor import list_mode_options
        mode_opts = dict(list_mode_options(mode, dyn))
        mode_opts.pop("triton.cudagraphs", None)  # CUDA graphs do not exist on CPU
        freeze_opt = {k: options.pop(k) for k in ("freezing",) if k in options}
        options = {**options, **mode_opts, **freeze_opt}
    kwargs: dict[str, Any] = {"options": options or None, "dynamic": dyn}
    wrapped = CompiledModule(module, kwargs, call_config)
    compiled = variant.evolve(module=wrapped)
    compiled.tags.update({"compiled": True, "eager_module": module,
                          "graph": label, "compile_mode": mode, "freezing": freezing})

    ctx.task.check()
    ctx.task.report("compile", 0, 1, f"{label}: compiling on the first call "
                    "(13-22 s when the inductor cache is cold; cannot be interrupted)")
    graphs0, breaks0, reasons0 = _dynamo_counts()
    t0 = time.perf_counter()
    try:
        out = output_of(compiled, prepared)
    except Exception as exc:  # noqa: BLE001 - Dynamo/Inductor errors are many; name the cause
        from ..errors import Cancelled, UserError
        if isinstance(exc, Cancelled):
            raise
        from ..errors import clean_message
        text = str(exc).strip().splitlines()
        raise UserError(f"{label} failed on this model: {type(exc).__name__}: "
                        f"{clean_message(text[0])[:300] if text else ''}") from exc
    first = time.perf_counter() - t0
    graphs1, breaks1, reasons1 = _dynamo_counts()
    ctx.task.check()
    steady = float("inf")
    for _ in range(2):  # the steady state (min of two: the first run also allocates)
        t0 = time.perf_counter()
        output_of(compiled, prepared)
        steady = min(steady, time.perf_counter() - t0)
    ctx.task.report("compile", 1, 1, f"{label}: compiled in {first:.1f} s")
    ctx.metrics["compile_s"] = round(first, 3)
    ctx.metrics["compiled_graphs"] = graphs1 - graphs0
    ctx.metrics["graph_breaks"] = breaks1 - breaks0

    rnn = isinstance(module, nn.Module) and any(isinstance(m, nn.RNNBase) for m in module.modules())
    rnn_text = ("LSTM/GRU/RNN layers are not traced by Dynamo (a graph break) and run eager"
                if rnn else "")
    if graphs1 == graphs0:
        ctx.note(f"{label}: no graph was compiled — this model runs EAGER, expect ~1.0x "
                 f"({rnn_text or 'graph breaks: ' + (_reasons(reasons0, reasons1) or 'none recorded')})")
        compiled.tags["compiled_eager_fallback"] = True
    elif breaks1 > breaks0:
        ctx.note(f"{label}: {breaks1 - breaks0} graph break(s), those parts run eager: "
                 f"{rnn_text or _reasons(reasons0, reasons1)}")
    diff = max_rel_diff(reference, out)
    ctx.metrics["compile_max_diff"] = diff
    if diff > 1e-2:
        ctx.note(f"{label}: compiled output differs from eager by {diff:.3g} (relative)")
    ctx.note(f"{label} (mode={mode}, freezing={'on' if freezing else 'off'}, "
             f"{'dynamic shapes' if dynamic else 'static shapes, generalised on a new shape'}): "
             f"first call {first:.1f} s, then {steady * 1e3:.1f} ms; compile time is reported "
             f"apart from latency. This variant has its own Dynamo cache (no reuse across "
             f"instances, own recompile budget of {torch._dynamo.config.recompile_limit} shapes)")
    if freezing and graphs1 > graphs0:
        ctx.note("freezing folds weights into the compiled graph as constants: the eager copy is "
                 "kept for saving, so memory holds the weights twice")
    return compiled


def compile_script(mode: str, freezing: bool, dynamic: bool) -> str:
    """The standalone script's form of `compile_variant` (its body inside a step function)."""
    dyn = "True" if dynamic else "None"
    extra = ""
    if mode != "default":
        extra = (f"from torch._inductor import list_mode_options\n"
                 f"options.update({{k: v for k, v in list_mode_options({mode!r}, {dyn}).items()\n"
                 f"                if k != 'triton.cudagraphs'}})\n"
                 f"options['freezing'] = {freezing!r}\n")
    return (f"options = {{'freezing': {freezing!r}}}\n{extra}"
            f"# what gets saved is model._orig_mod: compiled kernels live in this process only\n"
            f"model = torch.compile(model, options=options, dynamic={dyn})\n"
            f"run(model, call, EXAMPLE)  # the first call compiles (seconds); not timed\n")


def _reasons(before: dict, after: dict) -> str:
    new = [k for k in after if after[k] > before.get(k, 0)]
    return "; ".join(k.split("\n", 1)[0].strip() for k in new)


def rewarm(variant: Variant, example: Inputs, task: Optional[Task] = None) -> float:
    """Call a compiled/scripted variant on `example` the way the timer will (seconds taken).

    Use after anything that may invalidate compiled graphs (a changed grad mode, a
    `torch._dynamo.reset()` from strict export) so the recompile is not timed as latency.
    """
    prepared = variant.prepare(example)
    t0 = time.perf_counter()
    for _ in range(2):  # TorchScript's profiling executor optimizes on the second call
        if task is not None:
            task.check()
        variant.run_prepared(prepared)
    return time.perf_counter() - t0
