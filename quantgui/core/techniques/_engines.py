"""Shared helpers of the INT8/INT4 techniques: choosing a quantized engine by measuring it,
importing torchao quietly, and counting what a quantization pass actually converted.

Why measure: the fastest `torch.backends.quantized.engine` depends on the CPU, the batch size
and the thread count (on one AVX512-VNNI EPYC, dynamic INT8 on a 1024-wide MLP was fastest with
fbgemm at batch 64 while an AMX box preferred onednn; x86 wins at batch 1 on both). So a step
quantizes a copy per candidate, times a few interleaved calls on `ctx.example` (the user's
batch), keeps the fastest and notes the numbers.
"""

from __future__ import annotations

import logging
import platform
import time
from typing import Callable, Optional

import torch
from torch import nn

from ..model.inputs import Inputs
from ..model.variant import Variant
from ..progress import Task
from .hooks import VerdictContext

#: Every engine a user may force; `auto_engines()` is the subset worth measuring.
ENGINE_CHOICES = ("x86", "fbgemm", "onednn", "qnnpack")


def auto_engines() -> list[str]:
    """Engines worth timing on this machine. qnnpack is an ARM/mobile engine: on x86 it is
    5-10x slower than the others (measured), so it is only a candidate off x86."""
    supported = list(torch.backends.quantized.supported_engines)
    x86_cpu = platform.machine().lower() in ("x86_64", "amd64", "i686", "x86")
    wanted = ("x86", "fbgemm", "onednn") if x86_cpu else ("qnnpack", "x86", "onednn")
    return [e for e in wanted if e in supported]


def check_engine(engine: str) -> None:
    from ..errors import UserError
    if engine not in torch.backends.quantized.supported_engines:
        raise UserError(f"quantized engine '{engine}' is not available in this torch build; "
                        f"available: {', '.join(e for e in torch.backends.quantized.supported_engines if e != 'none')}")


#: A candidate whose first calls already take this many times the fastest one's is not timed
#: further (torchao's eager INT8 took 4.5-11 s per call on a sentence encoder where torch.ao
#: took 0.1 s: timing it in rounds was most of a recommendation's minute and a half).
SLOW_CAP = 3.0


def time_variants(candidates: dict[str, Variant], example: Inputs, task: Optional[Task] = None,
                  budget_s: float = 1.2, rounds: int = 7,
                  dropped: Optional[dict[str, str]] = None) -> dict[str, float]:
    """Best-of-rounds milliseconds per call of each candidate, timed in interleaved rounds.

    Interleaving spreads slow phases of the machine over all candidates; taking each one's
    fastest round (not the median) discards interference from other processes, which only
    ever adds time: on a shared 2-core box medians swung 10x while minima held. The total
    stays near `budget_s`. A candidate whose first call already took `SLOW_CAP` times the
    fastest first call is timed no further: its one call is its timing, and `dropped` (when
    given) gets the reason."""
    prepared = {label: v.prepare(example) for label, v in candidates.items()}
    first: dict[str, float] = {}
    for label, v in candidates.items():  # first calls allocate and pack
        start = time.perf_counter()
        v.run_prepared(prepared[label])
        first[label] = max(time.perf_counter() - start, 1e-6)
        if task is not None:
            task.check()
    quickest = min(first.values())
    slow = {label for label, s in first.items() if s >= SLOW_CAP * quickest}
    for label in slow:
        if dropped is not None:
            dropped[label] = (f"{SLOW_CAP:g}x slower after 1 call ({first[label] / quickest:.1f}x "
                              f"the fastest candidate's first call)")
    live = {label: v for label, v in candidates.items() if label not in slow}
    single: dict[str, float] = {}
    for label, v in live.items():
        start = time.perf_counter()
        v.run_prepared(prepared[label])
        single[label] = max(time.perf_counter() - start, 1e-6)
        if task is not None:
            task.check()
    per_round = sum(single.values())
    calls = int(max(1, min(20, budget_s / (rounds * per_round))))
    if per_round * rounds > budget_s:  # slow model: fewer rounds rather than a long wait
        rounds = max(2, int(budget_s / per_round))
    samples: dict[str, list[float]] = {label: [] for label in live}
    for _ in range(rounds):
        for label, v in live.items():
            start = time.perf_counter()
            for _ in range(calls):
                v.run_prepared(prepared[label])
            samples[label].append((time.perf_counter() - start) / calls * 1e3)
            if task is not None:
                task.check()
    out = {label: min(s) for label, s in samples.items()}
    out.update({label: first[label] * 1e3 for label in slow})
    return {label: out[label] for label in candidates}


def fastest(timings: dict[str, float], exclude: tuple[str, ...] = ()) -> str:
    return min((k for k in timings if k not in exclude), key=timings.__getitem__)


def describe_choice(what: str, chosen: str, timings: dict[str, float], batch: int,
                    baseline: Optional[float] = None) -> str:
    """E.g. 'engine fbgemm chosen: 1.01 ms vs onednn 1.35 ms, x86 1.68 ms at batch 64
    (FP32 6.76 ms)'."""
    others = ", ".join(f"{k} {v:.3g} ms" for k, v in sorted(timings.items(), key=lambda kv: kv[1])
                       if k != chosen)
    text = f"{what} {chosen} chosen by measurement: {timings[chosen]:.3g} ms"
    if others:
        text += f" vs {others}"
    text += f" at batch {batch}"
    if baseline is not None:
        text += f" (FP32 {baseline:.3g} ms, {baseline / timings[chosen]:.2g}x)"
    return text


def time_baseline_and(candidates: dict[str, Variant], original: Callable, example: Inputs,
                      task: Optional[Task] = None,
                      dropped: Optional[dict[str, str]] = None) -> tuple[dict[str, float], float]:
    """Times the candidates together with the unquantized module (so the note can say
    whether INT8 is faster at all); returns (candidate timings, FP32 ms)."""
    label = "\0fp32"
    timings = time_variants({**candidates, label: Variant(original)}, example, task,
                            dropped=dropped)
    baseline = timings.pop(label)
    if dropped is not None:
        dropped.pop(label, None)
    return timings, baseline


def import_torchao():
    """torchao, imported without its harmless 'Failed to load ..._C_cutlass' CUDA-library
    warnings (they are logged on import on CPU-only machines)."""
    # torch's pytree logger also warns, once, that torchao registers an Enum it no longer needs to.
    loggers = [logging.getLogger(name) for name in ("torchao", "torch.utils._pytree")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        import torchao  # noqa: F401
        import torchao.quantization  # noqa: F401
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)
    return torchao


def modules_of(model: nn.Module, types: tuple[type, ...]) -> list[nn.Module]:
    return [m for m in model.modules() if type(m) in types]


def has_any(model: nn.Module, types: tuple[type, ...]) -> bool:
    """Exact-type check (subclasses such as MHA's NonDynamicallyQuantizableLinear are not
    swapped by torch.ao's mappings either). Cheap: one pass over modules, stops early."""
    return any(type(m) in types for m in model.modules())


# --- models that are programs rather than module trees ------------------------------------------

def is_torchscript(model: object) -> bool:
    return isinstance(model, torch.jit.ScriptModule)


def is_exported(model: object) -> bool:
    """`ExportedProgram.module()` (a GraphModule subclass from torch.export), which is what
    PT2E quantization takes; its layers are graph operators, not nn.Linear modules."""
    return any(c.__module__.startswith("torch.export") for c in type(model).__mro__)


def graph_ops(model: nn.Module) -> set[str]:
    """The aten operators an exported graph calls ('linear', 'conv2d', ...)."""
    graph = getattr(model, "graph", None)
    ops = set()
    for node in (graph.nodes if graph is not None else ()):
        if node.op == "call_function":
            parts = str(node.target).split(".")
            if len(parts) >= 2 and parts[0] == "aten":
                ops.add(parts[1])
    return ops


QUANTIZABLE_OPS = {"linear", "conv1d", "conv2d", "conv3d"}


def program_reason(model: object, cannot: str) -> Optional[str]:
    """Why a technique that rewrites nn.Module layers cannot run on a TorchScript archive or an
    exported program (`cannot`: what it cannot do there); None for an ordinary module."""
    if is_torchscript(model):
        return (f"a TorchScript archive is compiled code: {cannot}; open the state_dict + "
                f"architecture, or the .pt2 export, instead")
    if is_exported(model):
        return (f"an exported program is a graph of operators, not nn.Linear/Conv modules: "
                f"{cannot}; open the state_dict + architecture instead")
    return None


# --- why an INT8/INT4 step may not pay off (the techniques' why_not_faster hooks) ------------

def int8_batch_reason(batch_size: int) -> list[str]:
    """INT8 GEMMs quantize activations per call; at tiny batches that cost is not paid back."""
    if batch_size > 4:
        return []
    return [f"batch {batch_size} may be too small for INT8 GEMM to pay off: quantizing "
            f"activations costs the same per call; try a larger batch"]


def subclass_reason(ctx: VerdictContext) -> list[str]:
    if ctx.subclass_weights and not ctx.compiled:
        return ["torchao keeps quantized weights as tensor subclasses that dispatch op by op in "
                "eager mode; they pay off only under torch.compile"]
    return []


def pt2e_reason(ctx: VerdictContext) -> list[str]:
    if ctx.step.decisions.get("api") == "pt2e" and not ctx.compiled:
        return ["a PT2E graph run without torch.compile (freezing) keeps its quantize/dequantize "
                "ops: it is slower than FP32 until compiled"]
    return []


WEIGHT_ONLY_REASON = ("weight-only quantization on CPU dequantizes the weights on every call: it "
                      "saves memory, not time")
