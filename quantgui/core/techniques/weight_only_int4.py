"""Weight-only INT4: Linear weights stored as 4-bit groups (one bf16 scale/zero per group),
computed with bf16 activations.

On CPU with torch 2.13 / torchao 0.18 the official `Int4WeightOnlyConfig` does not run (every
layout needs the CUDA-only `mslk` kernels). torchao's prototype
`PrototypeInt4WeightOnlyConfig` does, on torch's `_weight_int4pack_mm_for_cpu` kernel; it needs
bf16 activations (with FP32 ones it is ~100x slower), so the whole model runs in bf16. It is a
size technique: Linear weights ~1/7 of FP32; speed roughly FP32's while a plain bf16 cast is
~2x faster on AVX512-BF16 CPUs, so the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass
import functools
import importlib.util
import os
from typing import Optional

import torch
from torch import nn

from . import _engines, _layers
from ..errors import UserError
from ..model.variant import Variant
from ..params import param
from .base import StepContext, Technique
from .hooks import NoScript

#: The CPU int4 packing kernel tiles output features by 16; inputs must split into groups.
_N_MULTIPLE = 16
_SMALLEST_GROUP = 32


@functools.lru_cache(maxsize=1)
def cpu_int4_unavailable() -> Optional[str]:
    """None when an INT4 weight-only path runs on this CPU, else why not. Probed once per
    process without importing torchao (slow, noisy): the package files and torch's CPU int4
    kernels on a 16x32 weight (about a millisecond)."""
    spec = importlib.util.find_spec("torchao")
    if spec is None or not spec.submodule_search_locations:
        return "torchao is not installed (pip install torchao) and Int4 needs it"
    root = list(spec.submodule_search_locations)[0]
    if not os.path.isdir(os.path.join(root, "prototype", "quantization", "int4")):
        return ("torchao's Int4WeightOnlyConfig has no CPU kernel in this version and its "
                "prototype CPU INT4 path is missing")
    try:
        int_data = torch.randint(0, 16, (16, 32), dtype=torch.int32)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(int_data, 1)
        scale_and_zero = torch.ones(1, 16, 2, dtype=torch.bfloat16)
        out = torch.ops.aten._weight_int4pack_mm_for_cpu(
            torch.randn(2, 32, dtype=torch.bfloat16), packed, 32, scale_and_zero)
        if tuple(out.shape) != (2, 16):
            return "torch's CPU INT4 kernel returned a wrong shape"
    except Exception as exc:  # missing op or unsupported CPU
        return f"torch has no working CPU INT4 kernel here ({type(exc).__name__})"
    return None


def eligible(linear: nn.Module, group_size: int) -> bool:
    return (type(linear) is nn.Linear and linear.out_features % _N_MULTIPLE == 0
            and linear.in_features % group_size == 0)


@dataclass
class Params:
    group_size: int = param(
        128, "Inputs sharing one scale/zero point. Smaller groups: more accurate, a little "
        "larger (one bf16 scale+zero per group). Layers whose input width is not a multiple "
        "(or whose output width is not a multiple of 16) stay in bf16.",
        choices=(32, 64, 128, 256))
    skip: list[str] = _layers.skip_param()


class WeightOnlyInt4(Technique):
    name = "weight_only_int4"
    title = "Weight-only INT4"
    summary = ("Linear weights in 4 bits (~1/7 of FP32), computed in bf16: for fitting big "
               "models in memory; not faster than a plain bf16 cast on CPU. Prototype torchao.")
    Params = Params
    stage = 30
    group = "numeric format"
    needs_labels = False
    quantizes = True

    def applies_to(self, model: nn.Module) -> Optional[str]:
        reason = _engines.program_reason(model, "weight-only INT4 cannot swap its layers")
        if reason:
            return reason
        if not any(eligible(m, _SMALLEST_GROUP) for m in model.modules()):
            return ("no nn.Linear layer with input width a multiple of 32 and output width a "
                    "multiple of 16 (INT4 packing needs both)")
        return cpu_int4_unavailable()

    def apply(self, variant: Variant, params: Params, ctx: StepContext) -> Variant:
        reason = cpu_int4_unavailable()
        if reason:
            raise UserError(f"weight_only_int4: {reason}")
        model = variant.module
        if not isinstance(model, nn.Module):
            raise UserError("weight_only_int4 needs an nn.Module (an earlier step converted it)")
        plan = _layers.plan(model, lambda m: type(m) is nn.Linear, params.skip,
                            lambda m: None if eligible(m, params.group_size) else
                            f"shape {m.out_features}x{m.in_features} does not pack in groups "
                            f"of {params.group_size}")
        linears = plan.converted + list(plan.kept)
        names = plan.converted_set
        chosen = {id(m) for n, m in model.named_modules() if n in names}
        if not chosen:
            raise UserError(f"weight_only_int4: no Linear layer fits group_size "
                            f"{params.group_size}; try a smaller group")
        _engines.import_torchao()
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
        from torchao.quantization import quantize_

        # bf16 first: the INT4 kernel takes bf16 activations and makes bf16 scales.
        model = model.eval().to(torch.bfloat16)
        quantize_(model, PrototypeInt4WeightOnlyConfig(group_size=params.group_size,
                                                        set_inductor_config=False),
                  filter_fn=lambda m, _name: id(m) in chosen)
        ctx.task.check()
        ctx.note(f"INT4 weights (groups of {params.group_size}) on {len(chosen)} of "
                 f"{len(linears)} Linear layer(s) via torchao's prototype CPU path "
                 "(PrototypeInt4WeightOnlyConfig); the official Int4WeightOnlyConfig has no CPU "
                 "kernel on this torch")
        ctx.note("the whole model runs in bf16 (INT4 kernels need bf16 activations; with FP32 "
                 "they are ~100x slower). Speed is about FP32's; a plain bf16 cast is usually "
                 "faster: choose INT4 for size")
        ctx.note("state_dict holds packed INT4 weights plus bf16 scales; the rest is bf16")
        ctx.metrics["layers_quantized"] = len(chosen)
        ctx.decide("api", "torchao prototype")
        ctx.decide("dtype", "bfloat16")
        plan.record(ctx, "INT4")
        result = variant.evolve(module=model, input_dtype=torch.bfloat16)
        result.tags.update({"quantized_api": "torchao prototype int4",
                            "quantization": "weight_only_int4", "dtype": "bfloat16"})
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        return NoScript("weight-only INT4 runs torchao's prototype CPU path, which has no "
                        "script template yet")

    def why_not_faster(self, ctx):
        return _engines.subclass_reason(ctx) + [_engines.WEIGHT_ONLY_REASON]

    def recommend_hints(self, traits, capabilities):
        return []  # a size technique: about FP32's speed, slower than a plain bf16 cast


TECHNIQUE = WeightOnlyInt4()
