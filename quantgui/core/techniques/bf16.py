"""BF16: cast weights and activations to bfloat16, or run under bfloat16 autocast.

BF16 keeps FP32's exponent range (no overflow) with 8 mantissa bits. With AVX512-BF16 or AMX the
CPU multiplies BF16 natively: 1.3-3x on Linear/LSTM/transformer models at half the size. The cast
covers every module type, LSTM included (autocast does not help LSTM: measured 0.47x).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..params import param
from . import _layers, hooks
from .base import Technique
from .fp16 import apply_cast, cast_script, float_params_reason


@dataclass
class Params:
    autocast: bool = param(
        False, "Run under torch.autocast(cpu, bfloat16) instead of casting the model: matmuls "
        "and convolutions compute in BF16, precision-sensitive ops stay FP32. Keeps FP32 weights "
        "(no size gain) and re-casts them every call; slower than a cast on LSTMs.")
    skip: list[str] = _layers.skip_param()


class Bf16(Technique):
    name = "bf16"
    title = "BF16"
    summary = ("bfloat16 weights and activations: half the size, fast on CPUs with "
               "AVX512-BF16/AMX, small accuracy change.")
    Params = Params
    stage = 30
    group = 'numeric format'

    def applies_to(self, model):
        return float_params_reason(model, torch.bfloat16)

    def apply(self, variant, params, ctx):
        from ..env import cpu_capabilities, has_fast_bf16
        caps = [c for c in cpu_capabilities() if c in ("AVX512-BF16", "AMX-BF16")]
        if has_fast_bf16():
            speed = (f"this CPU has {', '.join(caps)}: BF16 matmuls run natively, so "
                     f"Linear-heavy models usually get faster (measured 2.1x on the digits MLP, "
                     f"1.3x on the CNN); small LSTMs and transformers may not (0.85-1.0x)")
        else:
            speed = ("this CPU has no AVX512-BF16/AMX: BF16 is emulated by converting to FP32, "
                     "expect the same speed or slower (size still halves)")
        return apply_cast(variant, params.autocast, ctx, torch.bfloat16, speed, params.skip)

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        return cast_script(step, "bfloat16")

    def why_not_faster(self, ctx):
        if "bf16" in ctx.fast_formats:
            return []
        return ["BF16 without AVX512-BF16 or AMX-BF16 on this CPU is emulated in FP32"]

    def recommend_hints(self, traits, capabilities):
        im = "inference_mode"
        with_layout = ("bf16", "channels_last", im) if traits.conv_net else ("bf16", im)
        if "bf16" in hooks.fast_formats(capabilities):
            hints = [hooks.Hint(with_layout, hooks.NATIVE_HALF,
                                "this CPU multiplies BF16 natively (AVX512-BF16/AMX)")]
        else:
            hints = [hooks.Hint(with_layout, hooks.EMULATED_HALF,
                                "BF16 is emulated here; measured in case the model is "
                                "memory-bound")]
        if traits.conv_net:
            hints.append(hooks.Hint(("bf16", im), hooks.EMULATED_HALF + 1,
                                    "BF16 without the channels-last layout"))
        return hints


TECHNIQUE = Bf16()
