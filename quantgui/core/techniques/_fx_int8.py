"""FX graph-mode INT8 shared by static PTQ and QAT: qconfig mappings, tracing errors in plain
words, converting an observed model once per candidate engine and keeping the fastest, and
saying how much of the model ended up quantized."""

from __future__ import annotations

import copy
from typing import Optional
import warnings

import torch
from torch import nn

from . import _engines
from ..errors import UserError, clean_message
from ..model.inputs import Inputs
from ..model.variant import Variant, quantized_engine
from .base import StepContext

#: Float layers FX static/QAT turns into quantized kernels (what coverage is counted on).
QUANTIZABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
               nn.ConvTranspose2d)
OBSERVERS = ("histogram", "minmax", "moving_average")


def reduce_range_for(engine: Optional[str]) -> bool:
    """x86/fbgemm kernels may overflow 16-bit accumulators on CPUs without VNNI unless
    activations use 7 bits; torch's own defaults do the same. When several engines are
    measured (engine=None) the observed model must suit all of them, so 7 bits it is."""
    return engine in (None, "x86", "fbgemm")


def qconfig_mapping(engine: Optional[str], observer: str, per_channel: bool, qat: bool = False):
    """torch's default mapping for the engine (keeps its special cases, e.g. fixed-qparams
    sigmoid/softmax and per-tensor ConvTranspose) with the global qconfig replaced by ours."""
    from torch.ao.quantization import (FakeQuantize, HistogramObserver, MinMaxObserver,
                                       MovingAverageMinMaxObserver,
                                       MovingAveragePerChannelMinMaxObserver,
                                       PerChannelMinMaxObserver, QConfig,
                                       get_default_qat_qconfig_mapping,
                                       get_default_qconfig_mapping)
    backend = engine or "x86"
    reduce_range = reduce_range_for(engine)
    if qat:
        mapping = get_default_qat_qconfig_mapping(backend)
        act = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver, quant_min=0,
                                     quant_max=127 if reduce_range else 255,
                                     dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        if per_channel:
            weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver,
                                            quant_min=-128, quant_max=127, dtype=torch.qint8,
                                            qscheme=torch.per_channel_symmetric)
        else:
            weight = FakeQuantize.with_args(observer=MovingAverageMinMaxObserver,
                                            quant_min=-128, quant_max=127, dtype=torch.qint8,
                                            qscheme=torch.per_tensor_symmetric)
        return mapping.set_global(QConfig(activation=act, weight=weight))
    mapping = get_default_qconfig_mapping(backend)
    act_cls = {"histogram": HistogramObserver, "minmax": MinMaxObserver,
               "moving_average": MovingAverageMinMaxObserver}[observer]
    act = act_cls.with_args(reduce_range=reduce_range)
    if per_channel:
        weight = PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                    qscheme=torch.per_channel_symmetric)
    else:
        weight = MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
    return mapping.set_global(QConfig(activation=act, weight=weight))


def skip_layers(mapping, model: nn.Module, skip, ctx: StepContext):
    """Set the qconfig of each Linear/Conv a skip pattern names to None (FX keeps it float) and
    record the plan; returns the plan."""
    from . import _layers
    plan = _layers.plan(model, _layers.of_types(*QUANTIZABLE), list(skip))
    for name in plan.kept:
        mapping.set_module_name(name, None)
    plan.record(ctx, "INT8")
    return plan


def prepare(model: nn.Module, mapping, example: Inputs, qat: bool = False) -> nn.Module:
    """Trace and insert observers (or fake-quant modules); a model FX cannot trace is the
    user's to know about, not a crash."""
    from torch.ao.quantization.quantize_fx import prepare_fx, prepare_qat_fx
    if example.kwargs:
        raise UserError("FX quantization traces positional inputs only; this model takes "
                        "keyword inputs (static_int8 with api=pt2e quantizes it; or "
                        "dynamic_int8)")
    fn = prepare_qat_fx if qat else prepare_fx
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # deprecation banner; noted by the caller
            return fn(model, mapping, example.args)
    except Exception as exc:  # torch.fx TraceError and friends
        raise UserError(f"FX graph mode cannot trace this model ({type(exc).__name__}: "
                        f"{clean_message(str(exc).splitlines()[0])[:160] if str(exc) else ''}); "
                        "dynamic_int8 needs no tracing") from None


def convert(observed: nn.Module, engine: str) -> nn.Module:
    from torch.ao.quantization.quantize_fx import convert_fx
    with quantized_engine(engine), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(copy.deepcopy(observed))


def convert_for_fastest_engine(observed: nn.Module, variant: Variant, engine: Optional[str],
                               ctx: StepContext, float_module: nn.Module) -> Variant:
    """Convert for the given engine, or (engine None) for each candidate engine and keep the
    fastest on ctx.example; the packed weights are engine-specific, so each needs its own
    convert. Decides "engine" and "chosen_by"."""
    ctx.task.report("convert", 0, 1, "converting to INT8")
    if engine is not None:
        _engines.check_engine(engine)
        ctx.note(f"engine {engine} (set by parameter)")
        ctx.decide("engine", engine)
        ctx.decide("chosen_by", "parameter")
        return variant.evolve(module=convert(observed, engine), quantized_engine=engine)
    candidates = {}
    for name in _engines.auto_engines():
        candidates[name] = variant.evolve(module=convert(observed, name), quantized_engine=name)
        ctx.task.check()
    if len(candidates) == 1:
        ctx.decide("engine", next(iter(candidates)))
        ctx.decide("chosen_by", "only candidate")
        return next(iter(candidates.values()))
    timings, baseline = _engines.time_baseline_and(candidates, float_module, ctx.example,
                                                   ctx.task)
    chosen = _engines.fastest(timings)
    ctx.decide("engine", chosen)
    ctx.decide("chosen_by", "measurement")
    ctx.note(_engines.describe_choice("engine", chosen, timings, ctx.batch_size, baseline))
    ctx.metrics["engine_timings_ms"] = {k: round(v, 4) for k, v in timings.items()}
    ctx.metrics["fp32_ms_at_choice"] = round(baseline, 4)
    return candidates[chosen]


def note_coverage(float_model: nn.Module, quantized: nn.Module, ctx: StepContext) -> None:
    """How many float Linear/Conv layers are left: FX keeps torch.nn containers such as
    nn.TransformerEncoder as leaves and does not quantize nn.LSTM statically."""
    before = sum(1 for m in float_model.modules() if type(m) in QUANTIZABLE)
    left = sum(1 for m in quantized.modules() if type(m) in QUANTIZABLE)
    ctx.metrics["layers_quantized"] = before - left
    ctx.metrics["layers_left_fp32"] = left
    kept = len(ctx.decisions.get("kept_layers") or [])
    if left:
        why = (f"{kept} kept by the skip list" + (", the rest e.g. inside nn.TransformerEncoder, "
               "which FX does not trace into" if left > kept else "")) if kept else \
            "e.g. inside nn.TransformerEncoder, which FX does not trace into"
        ctx.note(f"{before - left} of {before} Linear/Conv layers quantized; {left} stay FP32 "
                 f"({why})")
    else:
        ctx.note(f"all {before} Linear/Conv layers quantized; BatchNorm/ReLU that follow them are fused in")


def deprecation_note(ctx: StepContext) -> None:
    ctx.note("FX graph mode quantization (torch.ao.quantization.quantize_fx) is deprecated in "
             "favour of torchao PT2E; it is used because it runs eagerly with no compile cost")
