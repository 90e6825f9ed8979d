"""torch.compile: Dynamo captures the forward, Inductor generates fused C++/OpenMP kernels.

Gains come from fusing elementwise ops into their producers and (with freezing) folding
weights/BatchNorm and pre-packing weights for oneDNN: large on conv models and under BF16/INT8,
near 1.0x on a plain FP32 MLP whose time is all in GEMMs. The first call compiles (13-22 s with
a cold inductor cache, about 1 s warm); that time is reported as `compile_s`, apart from latency.
The isolation against Dynamo's silent traps lives in `_compile_util.compile_variant`.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from ..errors import UserError
from ..params import param
from . import hooks
from ._compile_util import compile_script, compile_variant
from .base import Technique
from .hooks import ScriptCode


@dataclass
class Params:
    mode: str = param(
        "default", "Inductor preset. default: fast compile, good kernels. reduce-overhead: aimed "
        "at CUDA graphs, on CPU about the same as default. max-autotune-no-cudagraphs: benchmarks "
        "GEMM kernel choices while compiling; can be a little faster, compiles much longer.",
        choices=("default", "reduce-overhead", "max-autotune-no-cudagraphs"))
    freezing: bool = param(
        True, "Treat weights as constants: folds BatchNorm into convs and pre-packs weights for "
        "oneDNN (usually faster for inference, required for fast PT2E INT8). Costs a second copy "
        "of the weights in memory; the model cannot be trained afterwards.")
    dynamic: bool = param(
        False, "Compile for any batch size/sequence length up front. Off (PyTorch's default): "
        "specialise to the example's shape and generalise only when another shape appears.")


class Compile(Technique):
    name = "compile"
    title = "torch.compile"
    summary = ("Compile the model into fused CPU kernels (Inductor). Big wins on conv and "
               "quantized models; the first call takes seconds (reported apart).")
    Params = Params
    stage = 50
    group = 'graph'

    def applies_to(self, model):
        return None  # anything callable compiles; what runs eager is detected and noted in apply

    def apply(self, variant, params, ctx):
        if variant.tags.get("compiled") or variant.tags.get("torchscript"):
            raise UserError("compile: the model is already compiled/frozen by an earlier step")
        if variant.autocast_dtype is not None:
            ctx.note("autocast is traced into the graph: the compiled kernels use the autocast "
                     "dtype")
        mod = variant.module
        if isinstance(mod, nn.Module) and mod.training:
            mod.eval()
        result = compile_variant(variant, ctx, mode=params.mode, freezing=params.freezing,
                                 dynamic=params.dynamic, label="torch.compile")
        ctx.decide("compiled", True)
        ctx.decide("eager_fallback", bool(result.tags.get("compiled_eager_fallback")))
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        mode = step.param("mode", "default")
        freezing, dynamic = bool(step.param("freezing", True)), bool(step.param("dynamic", False))
        return ScriptCode(compile_script(mode, freezing, dynamic),
                          f"torch.compile (mode={mode}, freezing={'on' if freezing else 'off'})")

    def why_not_faster(self, ctx):
        if ctx.step.decisions.get("eager_fallback"):
            return ["torch.compile captured no graph: the model ran eager (see the step's notes "
                    "for the graph breaks)"]
        return []

    def recommend_hints(self, traits, capabilities):
        im = "inference_mode"
        why = "fused Inductor kernels; the first call compiles for 10-30 s"
        hints = []
        if "bf16" in hooks.fast_formats(capabilities):
            hints.append(hooks.Hint(("bf16", "compile", im), hooks.COMPILE, why, costly=True))
        hints.append(hooks.Hint(("compile", im), hooks.COMPILE + 1, why, costly=True))
        return hints


TECHNIQUE = Compile()
