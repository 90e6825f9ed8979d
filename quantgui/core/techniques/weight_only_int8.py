"""Weight-only INT8 (torchao `Int8WeightOnlyConfig`): Linear weights stored as INT8 with
per-row (or per-group) scales and dequantized inside each call; activations stay float.

It is a size/memory technique: ~4x smaller Linear weights with near-exact outputs. In eager
mode on CPU the dequantization makes calls slower than FP32 (0.8x at batch 64, 0.4x at batch 1
in the notes); a later compile step can fuse it. Its state_dict loads with weights_only=True.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import nn

from . import _engines, _layers
from ..errors import UserError
from ..model.variant import Variant
from ..params import param
from .base import StepContext, Technique
from .hooks import ScriptCode


@dataclass
class Params:
    group_size: int = param(
        0, "0: one scale per output row (smallest, already near-exact). 32-256: one scale per "
        "group of that many inputs: a little more accurate, slightly larger. Layers whose "
        "input width is not a multiple stay FP32.", choices=(0, 32, 64, 128, 256))
    skip: list[str] = _layers.skip_param()


class WeightOnlyInt8(Technique):
    name = "weight_only_int8"
    title = "Weight-only INT8"
    summary = ("Linear weights stored as INT8, computed in float: ~4x smaller weights, "
               "near-exact outputs; saves memory, not time (slower than FP32 in eager mode).")
    Params = Params
    stage = 30
    group = "numeric format"
    needs_labels = False
    quantizes = True

    def applies_to(self, model: nn.Module) -> Optional[str]:
        reason = _engines.program_reason(model, "weight-only INT8 cannot swap its layers")
        if reason:
            return reason
        if not _engines.has_any(model, (nn.Linear,)):
            return "no nn.Linear layers to quantize"
        return None

    def apply(self, variant: Variant, params: Params, ctx: StepContext) -> Variant:
        model = variant.module
        if not isinstance(model, nn.Module):
            raise UserError("weight_only_int8 needs an nn.Module (an earlier step converted it)")
        _engines.import_torchao()
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
        from torchao.quantization.granularity import PerGroup, PerRow
        granularity = PerGroup(params.group_size) if params.group_size else PerRow()
        # set_inductor_config=False: the default flips process-global inductor settings.
        config = Int8WeightOnlyConfig(granularity=granularity, set_inductor_config=False)
        group = params.group_size
        plan = _layers.plan(model, lambda m: type(m) is nn.Linear, params.skip,
                            lambda m: None if not group or m.in_features % group == 0 else
                            f"input width {m.in_features} is not a multiple of {group}")
        linears = plan.converted + list(plan.kept)
        eligible = plan.converted
        chosen = plan.converted_set
        quantize_(model.eval(), config, filter_fn=lambda _m, name: name in chosen)
        ctx.task.check()
        ctx.note(f"torchao Int8WeightOnlyConfig ({'per-row' if not params.group_size else f'groups of {params.group_size}'}"
                 f" scales) on {len(eligible)} of {len(linears)} Linear layer(s); "
                 "dequantizes in every call, so expect no speedup in eager mode")
        ctx.note("state_dict holds INT8 weights (~1/4 of FP32) and loads with "
                 "torch.load with weights_only=True")
        ctx.metrics["layers_quantized"] = len(eligible)
        ctx.decide("api", "torchao")
        plan.record(ctx, "INT8")
        result = variant.evolve(module=model)
        result.tags.update({"quantized_api": "torchao", "quantization": "weight_only_int8"})
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        group = int(step.param("group_size", 0) or 0)
        gran = f"PerGroup({group})" if group else "PerRow()"
        skip = list(step.param("skip", []))
        body = f"""\
import logging
logging.getLogger("torchao").setLevel(logging.ERROR)  # CUDA-library notices on CPU
import torchao.quantization  # noqa: F401
from torchao.quantization import Int8WeightOnlyConfig, quantize_
from torchao.quantization.granularity import PerGroup, PerRow
SKIP = {skip!r}  # layers kept in higher precision (module-name patterns)
eligible = {{id(m) for n, m in model.named_modules() if type(m) is nn.Linear
            and ({group} == 0 or m.in_features % {group or 1} == 0) and not skipped(n, SKIP)}}
quantize_(model.eval(), Int8WeightOnlyConfig(granularity={gran}, set_inductor_config=False),
          filter_fn=lambda m, _name: id(m) in eligible)
"""
        what = "per-row" if not group else f"groups of {group}"
        return ScriptCode(body, f"weight-only INT8 via torchao ({what} scales)", True)

    def why_not_faster(self, ctx):
        return _engines.subclass_reason(ctx) + [_engines.WEIGHT_ONLY_REASON]

    def recommend_hints(self, traits, capabilities):
        return []  # saves memory, not time: never a speed candidate


TECHNIQUE = WeightOnlyInt8()
