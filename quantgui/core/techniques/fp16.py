"""FP16: cast weights and activations to float16, or run under float16 autocast.

Halves the weights. On CPUs speed rarely improves: only AVX512-FP16 / AMX-FP16 parts compute in
FP16 natively; elsewhere kernels convert to FP32 and back (measured 0.06-0.2x on an AVX512-BF16
EPYC without AVX512-FP16, 0.8-1.1x on a Xeon with it). The shared cast
logic lives here; bf16.py reuses it with another dtype.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from ..errors import UserError, clean_message
from ..model.variant import Variant
from ..params import param
from ._compile_util import max_rel_diff, output_of
from . import _layers, hooks
from .base import StepContext, Technique
from .hooks import ScriptCode, StepRecord

_NAMES = {torch.float16: "FP16", torch.bfloat16: "BF16"}


@dataclass
class Params:
    autocast: bool = param(
        False, "Run under torch.autocast(cpu, float16) instead of casting the model: matmuls and "
        "convolutions compute in FP16, the rest stays FP32. Keeps FP32 weights (no size gain) "
        "and is rarely faster on CPU; use it when a full cast loses too much accuracy.")
    skip: list[str] = _layers.skip_param()


#: What a cast with a skip list converts layer by layer (norms and the glue between layers stay
#: FP32 then: each converted layer casts its inputs in and its outputs back).
CAST_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.LSTM, nn.GRU, nn.Embedding)


def float_params_reason(model: nn.Module, dtype: torch.dtype) -> Optional[str]:
    floats = [p for p in model.parameters() if p.is_floating_point()]
    if not floats:
        return "no floating-point parameters to cast (already quantized or parameter-free)"
    if all(p.dtype == dtype for p in floats):
        return f"the parameters are already {_NAMES[dtype]}"
    return None


def apply_cast(variant: Variant, autocast: bool, ctx: StepContext, dtype: torch.dtype,
               speed_note: str, skip: Optional[list] = None) -> Variant:
    name = _NAMES[dtype]
    module = variant.module
    ctx.decide("dtype", str(dtype).replace("torch.", ""))
    ctx.decide("autocast", bool(autocast))
    reference = output_of(variant, variant.prepare(ctx.example))
    if skip and autocast:
        raise UserError(f"{name}: autocast covers the whole call and cannot keep layers in FP32; "
                        f"a skip list needs autocast=false (a cast layer by layer)")
    if skip:
        if not isinstance(module, nn.Module):
            raise UserError(f"{name}: a skip list needs an nn.Module (an earlier step converted "
                            f"the model)")
        plan = _layers.plan(module, _layers.of_types(*CAST_TYPES), skip)
        cast = _layers.cast_layers(module, list(skip), dtype, CAST_TYPES)
        plan.converted = cast
        plan.record(ctx, name)
        out = variant.evolve()
        out.tags["dtype"] = f"mixed {str(dtype).replace('torch.', '')}/float32"
        ctx.note(f"cast {len(cast)} layer(s) to {name} one by one (each casts its inputs in and "
                 f"its outputs back to FP32); the layers kept, norms and the glue between layers "
                 f"stay FP32")
    elif autocast:
        out = variant.evolve(autocast_dtype=dtype)
        ctx.note(f"autocast {name}: weights stay FP32 (size unchanged); matmul/conv-like ops "
                 f"run in {name}, casting weights on every call")
    else:
        # .to() casts floating parameters and buffers (BatchNorm statistics, LSTM flat
        # weights); integer buffers and packed quantized weights are left alone.
        module.to(dtype)
        out = variant.evolve(input_dtype=dtype)
        out.tags["dtype"] = str(dtype).replace("torch.", "")
        ctx.note(f"cast to {name}: weights and activations are {name}, inputs are cast before "
                 f"the call and outputs back to FP32 for comparison")
    ctx.note(speed_note)
    # Smoke-run now: a missing kernel or an overflow should fail here with a reason, not later
    # inside the timer.
    try:
        result = output_of(out, out.prepare(ctx.example))
    except (RuntimeError, NotImplementedError) as exc:
        first = clean_message(str(exc).strip().splitlines()[0]) if str(exc).strip() \
            else type(exc).__name__
        raise UserError(f"{name}: the model does not run in {name} on this CPU: {first}") from None
    if result.is_floating_point() and not torch.isfinite(result).all():
        ctx.note(f"WARNING: the {name} output has inf/NaN values (range overflow); "
                 f"{'BF16 keeps the FP32 range' if dtype == torch.float16 else 'keep FP32'}")
    else:
        diff = max_rel_diff(reference, result)
        ctx.metrics["cast_max_diff"] = round(diff, 6)
    return out


def cast_script(step: StepRecord, dtype: str) -> ScriptCode:
    """The script's form of `apply_cast` (dtype: "float16" / "bfloat16")."""
    skip = list(step.param("skip", []))
    if skip:
        types = ", ".join(f"nn.{t.__name__}" for t in CAST_TYPES)
        body = (f"SKIP = {skip!r}  # layers kept in FP32 (module-name patterns)\n"
                f"cast_layers(model, SKIP, torch.{dtype}, ({types}))\n")
        return ScriptCode(body, f"cast the layers not skipped to {dtype}, one by one")
    if step.decided("autocast", step.param("autocast", False)):
        return ScriptCode(f'call["autocast"] = torch.{dtype}\n',
                          f"run under torch.autocast(cpu, {dtype})")
    body = (f"model = model.to(torch.{dtype})  # float params and buffers\n"
            f'call["dtype"] = torch.{dtype}  # float inputs are cast before each call\n')
    return ScriptCode(body, f"cast weights and inputs to {dtype}")


class Fp16(Technique):
    name = "fp16"
    title = "FP16"
    summary = ("Half-precision float16 weights and activations: half the size; on most CPUs "
               "not faster (no native FP16 math).")
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return float_params_reason(model, torch.float16)

    def apply(self, variant, params, ctx):
        from ..env import cpu_capabilities
        native = [c for c in cpu_capabilities() if c in ("AVX512-FP16", "AMX-FP16")]
        if native:
            speed = (f"this CPU has {', '.join(native)}: FP16 may run natively, but PyTorch's CPU "
                     f"kernels often still convert to FP32; BF16 is usually the faster choice")
        else:
            speed = ("this CPU has no native FP16 arithmetic: kernels convert to FP32 and back, "
                     "so expect it to be slower, often several times (measured 0.06-0.2x on an "
                     "AVX512-BF16 EPYC); the size still halves. Prefer BF16 for speed")
        return apply_cast(variant, params.autocast, ctx, torch.float16, speed, params.skip)

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        return cast_script(step, "float16")

    def why_not_faster(self, ctx):
        if "AVX512-FP16" not in ctx.capabilities:
            return ["FP16 on a CPU without native FP16 math (no AVX512-FP16): every op converts "
                    "to FP32 and back"]
        return ["PyTorch's CPU FP16 kernels are rarely faster than FP32 even with AVX512-FP16; "
                "BF16 is the fast 16-bit format on CPU"]

    def recommend_hints(self, traits, capabilities):
        if "fp16" not in hooks.fast_formats(capabilities):
            return []  # emulated: several times slower than FP32
        return [hooks.Hint(("fp16", "inference_mode"), hooks.NATIVE_FP16,
                           "this CPU computes FP16 natively")]


TECHNIQUE = Fp16()
