"""Static INT8 post-training quantization: weights and activations INT8, activation ranges
measured beforehand on calibration batches, BatchNorm/ReLU fused into the quantized convs.

Two implementations:
- FX graph mode (torch.ao `prepare_fx`/`convert_fx`, deprecated): runs eagerly, no compile cost,
  steady state close to PT2E on conv nets (7.9x vs 8.2x on the digits CNN in the notes);
- PT2E (torchao `prepare_pt2e`/`convert_pt2e` + X86InductorQuantizer) run through torch.compile
  with freezing: the maintained path and traces into nn.TransformerEncoder, but the first call
  compiles for seconds (and again once for a new batch size).
`api=auto` takes FX where FX can trace the model, and PT2E where it cannot: a model called with
keyword inputs (Hugging Face models), an exported program (.pt2: already the graph PT2E takes;
FX would have nothing to swap), or a model whose FX trace fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from . import _engines, _fx_int8, _layers, hooks
from ..errors import UserError
from ..model.data import Dataset
from ..model.variant import Variant
from ..params import param
from .base import StepContext, Technique
from .hooks import NoScript, ScriptCode

_STATIC_TYPES = _fx_int8.QUANTIZABLE
#: Calibration batches hold at least this many samples even when the user's batch is tiny:
#: ranges observed on a handful of samples clip real inputs.
_MIN_CALIBRATION_BATCH = 32


@dataclass
class Params:
    api: str = param(
        "auto", "fx: eager torch.ao FX graph mode, no compile cost. pt2e: torchao PT2E + "
        "torch.compile with freezing; similar or better steady-state speed and traces into "
        "transformer blocks, but the first call compiles for several seconds. auto: fx, pt2e "
        "where FX cannot trace the model (keyword inputs such as Hugging Face models, "
        "exported .pt2 programs).", choices=("auto", "fx", "pt2e"))
    engine: Optional[str] = param(
        None, "Quantized kernel library (FX only). Empty = auto: converted for each engine "
        "and the fastest on your batch kept.", choices=_engines.ENGINE_CHOICES)
    batches: int = param(
        16, "Calibration batches drawn from the training data (or the example input). More "
        "batches give steadier activation ranges; each costs one forward pass.",
        min=1, max=1000)
    observer: str = param(
        "histogram", "How activation ranges are estimated. histogram: clips outliers by "
        "minimizing quantization error (best accuracy, slower calibration). minmax: full "
        "observed range (fast; outliers waste resolution). moving_average: min/max smoothed "
        "across batches. FX only (PT2E uses histogram).", choices=_fx_int8.OBSERVERS)
    per_channel: bool = param(
        True, "One weight scale per output channel: better accuracy at the same size and "
        "speed. Per-tensor only if a deployment target needs it (FX only).")
    skip: list[str] = _layers.skip_param()
    bf16: list[str] = _layers.bf16_param()


def calibration_data(ctx: StepContext) -> tuple[Dataset, str]:
    if ctx.train is not None and len(ctx.train) > 0:
        return ctx.train, ctx.train.name
    return Dataset(ctx.example, None, "example input"), "the example input (no training data)"


def calibrate(model: nn.Module, data: Dataset, batches: int, batch_size: int,
              ctx: StepContext, exact: bool = False) -> int:
    """Run calibration batches through an observed model; cancellable between batches.
    `exact`: the graph takes `batch_size` only (an exported program's shapes are fixed), so
    batches are that size and a shorter last one is left out."""
    size = batch_size if exact else max(batch_size, _MIN_CALIBRATION_BATCH)
    ctx.decide("calibration_batch", size)
    total = data.num_batches(size, batches)
    done = 0
    with torch.no_grad():
        for i, (inputs, _) in enumerate(data.batches(size, batches), 1):
            ctx.task.check()
            if exact and inputs.batch_size != size:
                continue
            model(*inputs.args, **inputs.kwargs)
            done += 1
            ctx.task.report("calibrate", i, total, "calibrating")
        if not done:  # no batch of the graph's size in the data: the example has that size
            model(*ctx.example.args, **ctx.example.kwargs)
            done = 1
    return done


class StaticInt8(Technique):
    name = "static_int8"
    title = "Static INT8"
    summary = ("INT8 weights and activations calibrated on sample data; conv/BatchNorm/ReLU "
               "fused: the big CPU win for conv nets (often 3-8x), ~4x smaller.")
    Params = Params
    stage = 30
    group = "numeric format"
    needs_labels = False
    quantizes = True

    def applies_to(self, model: nn.Module) -> Optional[str]:
        if _engines.is_exported(model):  # quantized through PT2E, op by op
            if not _engines.graph_ops(model) & _engines.QUANTIZABLE_OPS:
                return "the exported graph has no linear or convolution operators to quantize"
            return None
        reason = _engines.program_reason(model, "eager INT8 cannot swap its layers")
        if reason:
            return reason
        if not _engines.has_any(model, _STATIC_TYPES):
            return "no nn.Linear/Conv layers to quantize"
        return None

    def apply(self, variant: Variant, params: Params, ctx: StepContext) -> Variant:
        model = variant.module
        if not isinstance(model, nn.Module):
            raise UserError("static_int8 needs an nn.Module (an earlier step converted it)")
        model.eval()
        _layers.require_bf16(params.bf16)
        data, data_name = calibration_data(ctx)
        why_not_fx = self._why_not_fx(model, ctx)
        if params.api == "fx" and why_not_fx:
            raise UserError(f"api=fx cannot quantize this model: {why_not_fx}; use api=pt2e "
                            f"(or auto)")
        if params.api == "pt2e" or why_not_fx:
            if why_not_fx:
                ctx.note(f"api=auto chose PT2E: {why_not_fx}")
            return self._pt2e(variant, params, ctx, data, data_name)
        try:
            return self._fx(variant, params, ctx, data, data_name)
        except UserError as exc:
            if params.api == "fx" or "FX graph mode cannot trace" not in str(exc):
                raise
            ctx.note(f"{exc}; falling back to PT2E")
            return self._pt2e(variant, params, ctx, data, data_name)

    @staticmethod
    def _why_not_fx(model: nn.Module, ctx: StepContext) -> Optional[str]:
        if _engines.is_exported(model):
            return ("the model is an exported program, which is the graph PT2E quantizes; FX "
                    "would find no nn.Linear/Conv modules in it")
        if ctx.example.kwargs:
            return ("FX graph mode traces positional inputs only, and this model takes keyword "
                    "inputs (" + ", ".join(sorted(ctx.example.kwargs)) + ")")
        return None

    def _fx(self, variant: Variant, params: Params, ctx: StepContext, data: Dataset,
            data_name: str) -> Variant:
        model = variant.module
        if params.engine is not None:
            _engines.check_engine(params.engine)
        mapping = _fx_int8.qconfig_mapping(params.engine, params.observer, params.per_channel)
        plan = _fx_int8.skip_layers(mapping, model, params.skip, ctx)
        observed = _fx_int8.prepare(model, mapping, ctx.example)
        count = calibrate(observed, data, params.batches, ctx.batch_size, ctx)
        result = _fx_int8.convert_for_fastest_engine(observed, variant, params.engine, ctx,
                                                     model)
        _layers.bf16_fallback(result.module, plan, params.bf16, ctx)
        ctx.decide("api", "fx")
        ctx.decide("calibration_batches", count)
        ctx.note(f"FX static INT8: calibrated on {count} batch(es) of {data_name} with the "
                 f"{params.observer} observer, {'per-channel' if params.per_channel else 'per-tensor'}"
                 f" weights, {'7' if _fx_int8.reduce_range_for(params.engine) else '8'}-bit "
                 "activations")
        _fx_int8.deprecation_note(ctx)
        ctx.note("api=pt2e is often faster in steady state (compiled, q/dq fused) but its "
                 "first call compiles for seconds; auto prefers no compile cost")
        _fx_int8.note_coverage(model, result.module, ctx)
        ctx.note("state_dict holds INT8 weights (~1/4 of FP32); loading it needs "
                 "torch.load with weights_only=False and the same FX conversion")
        result.tags.update({"quantized_api": "torch.ao FX", "engine": result.quantized_engine,
                            "quantization": "static_int8"})
        return result

    def _pt2e(self, variant: Variant, params: Params, ctx: StepContext, data: Dataset,
              data_name: str) -> Variant:
        from . import _pt2e
        if params.bf16:
            raise UserError("bf16 (kept layers in BF16) works on the FX path; PT2E compiles one "
                            "INT8 graph")
        _engines.import_torchao()
        result, count, compile_s = _pt2e.quantize(
            variant, ctx, dynamic=False, what="dynamic_int8", skip=params.skip,
            calibrate=lambda prepared: calibrate(prepared, data, params.batches, ctx.batch_size,
                                                 ctx, exact=_engines.is_exported(variant.module)))
        ctx.decide("api", "pt2e")
        ctx.decide("compiled", True)
        ctx.decide("calibration_batches", count)
        ctx.note(f"PT2E static INT8 (X86InductorQuantizer, per-channel weights, histogram "
                 f"observer) calibrated on {count} batch(es) of {data_name}; run through "
                 f"torch.compile with freezing: first call took {compile_s:.1f} s; each new batch "
                 "size compiles once more (static shapes)")
        if params.observer != "histogram" or not params.per_channel or params.engine:
            ctx.note("observer/per_channel/engine parameters apply to FX only; PT2E used its "
                     "defaults")
        ctx.note("state_dict holds the INT8 weights (~1/4 of FP32); the unused FP32 originals "
                 "convert_pt2e keeps were dropped")
        result.tags["quantization"] = "static_int8"
        return result

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        api = step.decided("api") or ("pt2e" if step.param("api") == "pt2e" else "fx")
        if api == "pt2e":
            return NoScript("static INT8 ran through PT2E + torch.compile; that path has no "
                            "script template yet (api=fx has one)")
        return _fx_script(step)

    def why_not_faster(self, ctx):
        return _engines.int8_batch_reason(ctx.batch_size) + _engines.pt2e_reason(ctx)

    def recommend_hints(self, traits, capabilities):
        im = "inference_mode"
        if traits.conv_net:
            why = "conv nets: calibrated INT8 with Conv/BatchNorm/ReLU fused, often 3-8x"
            return [hooks.Hint(("static_int8", im), hooks.CONV_WINS, why),
                    hooks.Hint(("static_int8",), hooks.CONV_WINS + 2, why)]
        if not traits.transformer:
            return [hooks.Hint(("static_int8", im), hooks.PLAIN_STATIC_INT8,
                               "calibrated INT8 activations can beat dynamic INT8's per-call "
                               "quantization")]
        return []


TECHNIQUE = StaticInt8()

_OBSERVERS = {"histogram": "HistogramObserver", "minmax": "MinMaxObserver",
              "moving_average": "MovingAverageMinMaxObserver"}


def _fx_script(step):
    p = step.params
    engine = step.decided("engine") or p.get("engine") or "x86"
    backend = p.get("engine") or "x86"          # the mapping QuantGUI built (engine param)
    reduce_range = _fx_int8.reduce_range_for(p.get("engine"))
    observer = _OBSERVERS[p.get("observer") or "histogram"]
    weight = ("PerChannelMinMaxObserver.with_args(dtype=torch.qint8, "
              "qscheme=torch.per_channel_symmetric)" if p.get("per_channel", True) else
              "MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)")
    batches = int(p.get("batches") or 16)
    skip = list(p.get("skip") or [])
    size = int(step.decided("calibration_batch") or max(step.batch_size, _MIN_CALIBRATION_BATCH))
    why = (f"{engine!r} was set by parameter" if p.get("engine") else
           f"the QuantGUI run measured {engine!r} fastest on this machine and batch")
    body = f"""\
from torch.ao.quantization import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                                   PerChannelMinMaxObserver, QConfig, get_default_qconfig_mapping)
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
mapping = get_default_qconfig_mapping({backend!r}).set_global(QConfig(
    activation={observer}.with_args(reduce_range={reduce_range!r}),
    weight={weight}))
SKIP = {skip!r}  # layers kept in higher precision (module-name patterns)
for n, m in model.named_modules():
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                      nn.ConvTranspose2d)) and skipped(n, SKIP):
        mapping.set_module_name(n, None)
with warnings.catch_warnings():  # FX graph mode is deprecated but runs eagerly, no compile cost
    warnings.simplefilter("ignore")
    observed = prepare_fx(model, mapping, tuple(EXAMPLE.args))
    calibration = torch.load(CALIBRATION_FILE, map_location="cpu", weights_only=True)["args"]
    total = calibration[0].shape[0]
    with torch.no_grad():  # {batches} batch(es) of {size}, in order, as the run calibrated
        for start in range(0, min(total, {batches * size}), {size}):
            observed(*[t[start:start + {size}] for t in calibration])
    # Packed INT8 weights belong to one quantized engine: {why}.
    torch.backends.quantized.engine = {engine!r}
    model = convert_fx(observed)
call["engine"] = {engine!r}
"""
    body += _layers.bf16_script("nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, "
                                "nn.ConvTranspose2d", step)
    return ScriptCode(body, f"static INT8 via torch.ao FX ({p.get('observer') or 'histogram'} "
                      f"observer, {batches} calibration batch(es)), engine {engine}",
                      calibration_samples=batches * size)
