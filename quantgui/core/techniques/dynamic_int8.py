"""Dynamic INT8: weights stored as INT8, activations quantized on the fly per call.

Two implementations exist and neither wins everywhere, so `api=auto` measures them:
- torch.ao eager `quantize_dynamic` (deprecated, still the fastest eager CPU path and the only
  INT8 path for nn.LSTM/nn.GRU); its packed weights belong to one quantized engine, which is
  chosen by timing each engine on the user's batch;
- torchao `Int8DynamicActivationInt8WeightConfig` (maintained; fast mainly under torch.compile,
  Linear layers only).
A model opened as an exported program (.pt2) has no nn.Linear modules to swap, only linear
operators in a graph: there `auto` takes PT2E with dynamic activation quantization (torchao
`prepare_pt2e`/`convert_pt2e`, X86InductorQuantizer) run through torch.compile with freezing,
which is also available as `api=pt2e` for any model torch.export can capture.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional
import warnings

import torch
from torch import nn

from . import _engines, _layers, hooks
from ..errors import UserError
from ..model.variant import Variant
from ..params import param
from .base import StepContext, Technique
from .hooks import NoScript, ScriptCode

_RNN_TYPES = (nn.LSTM, nn.GRU)
_DYNAMIC_TYPES = (nn.Linear, nn.LSTM, nn.GRU)
_EMBEDDING_TYPES = (nn.Embedding, nn.EmbeddingBag)
TORCH_AO = "torch.ao"
TORCHAO = "torchao"
PT2E = "pt2e"


@dataclass
class Params:
    engine: Optional[str] = param(
        None, "Quantized kernel library for the torch.ao path. Empty = auto: each engine is "
        "timed on your batch and the fastest kept (it depends on CPU and batch size). "
        "qnnpack is for ARM; on x86 it is several times slower.",
        choices=_engines.ENGINE_CHOICES)
    api: str = param(
        "auto", "Implementation. torch.ao: deprecated but usually fastest in eager mode and the "
        "only one that handles LSTM/GRU. torchao: maintained, Linear only, fast mainly after "
        "torch.compile. pt2e: torchao PT2E + torch.compile with freezing; the path for "
        "exported (.pt2) programs, whose first call compiles for seconds. auto: times torch.ao "
        "and torchao and keeps the faster (pt2e for an exported program).",
        choices=("auto", TORCH_AO, TORCHAO, PT2E))
    per_channel: bool = param(
        True, "One scale per output channel instead of one per weight tensor: noticeably better "
        "fidelity (e.g. on transformer encoders) at the same size and speed.")
    embeddings: bool = param(
        False, "Also store nn.Embedding/EmbeddingBag tables as 8-bit (weight-only). Shrinks "
        "large vocabularies ~4x; no speedup; small accuracy risk. torch.ao path only.")
    skip: list[str] = _layers.skip_param()
    bf16: list[str] = _layers.bf16_param()
    activation: str = param(
        "auto", "How each call's activations get their INT8 scale. per_tensor: one scale for "
        "the whole activation (torch.ao, the fastest eager kernels), so one outlier token or "
        "channel coarsens every other value. per_token: one scale per token/row (torchao "
        "Int8DynamicActivationInt8WeightConfig), what transformer activations with outliers "
        "need; slower in eager mode (add a compile step). auto: torch.ao per-tensor and torchao "
        "per-token are timed and the faster kept.", choices=("auto", "per_tensor", "per_token"))
    smoothquant: Optional[float] = param(
        None, "SmoothQuant alpha (0-1; empty = off): before INT8, divide each Linear's input "
        "channels by a smoothing factor and multiply its weights by it, moving activation "
        "outliers into the weights (torchao prototype, per-token path). 0.5 is the usual start; "
        "higher moves more of the difficulty to the weights. Needs calibration batches.",
        min=0.0, max=1.0, step=0.05)
    calibration_batches: int = param(
        4, "SmoothQuant calibration: batches (of at least 32 samples) run through the "
        "observers, which record each input channel's largest absolute activation, from the "
        "training data, else the example. 2-8 is usually enough: a per-channel maximum settles "
        "quickly and more batches only cost time; use data like what the model will see.",
        min=1, max=1000)


def layer_types(params: Params) -> tuple:
    return _DYNAMIC_TYPES + (_EMBEDDING_TYPES if params.embeddings else ())


def _qconfig_spec(params: Params, kept: tuple = ()) -> dict:
    from torch.ao.quantization import (default_dynamic_qconfig, float_qparams_weight_only_qconfig,
                                       per_channel_dynamic_qconfig)
    qconfig = per_channel_dynamic_qconfig if params.per_channel else default_dynamic_qconfig
    spec = {t: qconfig for t in _DYNAMIC_TYPES}
    if params.embeddings:
        spec.update({t: float_qparams_weight_only_qconfig for t in _EMBEDDING_TYPES})
    # A module name beats its type in torch.ao's propagation; None keeps the layer float.
    spec.update({name: None for name in kept})
    return spec


def disable_encoder_fastpath(model: nn.Module) -> int:
    """Turn off the fused TransformerEncoderLayer fast path in layers whose Linear weights were
    swapped for packed INT8 ones.

    The fast path reads `linear1.weight.device`; on a dynamically quantized Linear `weight` is a
    method, so the call crashes with "'function' object has no attribute 'device'". Marking the
    layer's activation as not relu/gelu is the per-layer switch its forward checks (the
    activation itself is untouched: the slow path calls `self.activation`). The encoder's
    nested-tensor conversion is switched off too, since it inspects the same weights.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, nn.TransformerEncoderLayer):
            weights = (module.linear1, module.linear2, module.self_attn.out_proj)
            if any(not isinstance(getattr(w, "weight", None), torch.Tensor) for w in weights):
                module.activation_relu_or_gelu = False
                module.quantgui_fastpath_off = True  # so the note counts only our switches
                count += 1
        elif isinstance(module, nn.TransformerEncoder):
            module.use_nested_tensor = False
    return count


def quantize_torch_ao(model: nn.Module, params: Params, engine: str,
                      kept: tuple = ()) -> nn.Module:
    """A quantized copy with weights packed for `engine` (packing reads the global engine);
    the layers named in `kept` stay float."""
    from ..model.variant import quantized_engine
    with quantized_engine(engine), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation banner; it goes into the notes instead
        q = torch.ao.quantization.quantize_dynamic(model, _qconfig_spec(params, kept),
                                                   inplace=False)
    disable_encoder_fastpath(q)
    return q


def torchao_config(params: Params):
    """Per-token activations unless `activation=per_tensor`; weights per channel or tensor."""
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig
    from torchao.quantization.granularity import PerRow, PerTensor
    act = PerTensor() if params.activation == "per_tensor" else PerRow()
    # set_inductor_config=False: the default flips process-global inductor settings, which
    # would change every other compiled variant in this process.
    return Int8DynamicActivationInt8WeightConfig(
        granularity=[act, PerRow() if params.per_channel else PerTensor()],
        set_inductor_config=False)


def quantize_torchao(model: nn.Module, params: Params, calibrate=None) -> nn.Module:
    """torchao INT8; with `params.smoothquant`, SmoothQuant observers first, `calibrate(model)`
    runs batches through them, then the smoothed Linears are quantized."""
    _engines.import_torchao()
    from torchao.quantization import quantize_
    from torchao.quantization.quant_api import _is_linear
    q = copy.deepcopy(model)
    skip = list(params.skip)

    def linear_not_skipped(m: nn.Module, fqn: str) -> bool:
        return _is_linear(m, fqn) and not _layers.skipped(fqn, skip)

    if params.smoothquant is None:
        quantize_(q, torchao_config(params), filter_fn=linear_not_skipped)
        return q
    from torchao.prototype.smoothquant import SmoothQuantConfig
    base = torchao_config(params)
    quantize_(q, SmoothQuantConfig(base, step="prepare", alpha=params.smoothquant),
              filter_fn=linear_not_skipped)
    calibrate(q)
    quantize_(q, SmoothQuantConfig(base, step="convert", alpha=params.smoothquant),
              filter_fn=linear_not_skipped)
    return q


class DynamicInt8(Technique):
    name = "dynamic_int8"
    title = "Dynamic INT8"
    summary = ("INT8 weights, activations quantized per call: ~4x smaller Linear/LSTM/GRU "
               "weights and often 2-5x faster on Linear-heavy models; no calibration data needed.")
    Params = Params
    stage = 30
    group = "numeric format"
    needs_labels = False
    quantizes = True

    def applies_to(self, model: nn.Module) -> Optional[str]:
        if _engines.is_exported(model):  # quantized through PT2E, op by op
            if "linear" not in _engines.graph_ops(model):
                return "the exported graph has no linear operators to quantize"
            return None
        reason = _engines.program_reason(model, "eager INT8 cannot swap its layers")
        if reason:
            return reason
        if not _engines.has_any(model, _DYNAMIC_TYPES + _EMBEDDING_TYPES):
            return "no nn.Linear/LSTM/GRU layers to quantize"
        return None

    def apply(self, variant: Variant, params: Params, ctx: StepContext) -> Variant:
        model = variant.module
        if not isinstance(model, nn.Module):
            raise UserError("dynamic_int8 needs an nn.Module (the model was already converted "
                            "to something else by an earlier step)")
        model.eval()
        _layers.require_bf16(params.bf16)
        if _engines.is_exported(model) and params.api in (TORCH_AO, TORCHAO):
            raise UserError(f"api={params.api} swaps nn.Linear modules, and an exported program "
                            f"has none (its layers are graph operators); use api=pt2e (or auto)")
        if params.api == PT2E or _engines.is_exported(model):
            return self._pt2e(variant, params, ctx)
        has_rnn = _engines.has_any(model, _RNN_TYPES)
        has_linear = _engines.has_any(model, (nn.Linear,))
        apis = self._apis(params, has_rnn, has_linear)
        if params.engine is not None:
            _engines.check_engine(params.engine)
        engines = [params.engine] if params.engine else _engines.auto_engines()
        # torchao swaps Linear only; it is a candidate only where there is nothing else.
        plan = _layers.plan(model, _layers.of_types(*layer_types(params)), params.skip)
        kept = tuple(plan.kept)

        candidates: dict[str, Variant] = {}
        if TORCH_AO in apis:
            for engine in engines:
                q = quantize_torch_ao(model, params, engine, kept)
                candidates[engine if apis == [TORCH_AO] else f"{TORCH_AO}/{engine}"] = \
                    variant.evolve(module=q, quantized_engine=engine)
                ctx.task.check()
        if TORCHAO in apis:
            def calibrate(observed: nn.Module) -> None:
                from .static_int8 import calibrate as run_batches, calibration_data
                data, name = calibration_data(ctx)
                count = run_batches(observed, data, params.calibration_batches,
                                    ctx.batch_size, ctx)
                ctx.decide("calibration_batches", count)
                ctx.note(f"SmoothQuant (alpha {params.smoothquant:g}) calibrated on {count} "
                         f"batch(es) of {name}")
            candidates[TORCHAO] = variant.evolve(
                module=quantize_torchao(model, params, calibrate), quantized_engine=None)

        if len(candidates) == 1:
            chosen = next(iter(candidates))
            ctx.note(f"dynamic INT8 via {chosen if chosen == TORCHAO else TORCH_AO} "
                     f"(engine {candidates[chosen].quantized_engine or 'n/a'}, set by parameter)")
        else:
            dropped: dict[str, str] = {}
            timings, baseline = _engines.time_baseline_and(candidates, variant.module,
                                                           ctx.example, ctx.task, dropped)
            chosen = _engines.fastest(timings)
            for label, why in dropped.items():
                ctx.note(f"{label} not timed further: {why}")
            if dropped:
                ctx.metrics["dropped_candidates"] = dict(dropped)
            what = "engine" if apis == [TORCH_AO] else "API/engine"
            ctx.note(_engines.describe_choice(what, chosen, timings, ctx.batch_size, baseline))
            ctx.metrics["engine_timings_ms"] = {k: round(v, 4) for k, v in timings.items()}
            ctx.metrics["fp32_ms_at_choice"] = round(baseline, 4)
        result = candidates[chosen]
        api = TORCHAO if chosen == TORCHAO else TORCH_AO
        ctx.decide("api", api)
        ctx.decide("engine", result.quantized_engine)
        ctx.decide("activation", "per_tensor" if api == TORCH_AO or
                   params.activation == "per_tensor" else "per_token")
        ctx.decide("chosen_by", "measurement" if len(candidates) > 1 else
                   "parameter" if params.engine or params.api != "auto" else "only candidate")
        plan.record(ctx, "INT8")
        _layers.bf16_fallback(result.module, plan, params.bf16, ctx)
        self._notes(result.module, api, params, has_rnn, ctx)
        result.tags.update({"quantized_api": "torchao" if api == TORCHAO else "torch.ao eager",
                            "engine": result.quantized_engine, "quantization": "dynamic_int8"})
        return result

    @staticmethod
    def _pt2e(variant: Variant, params: Params, ctx: StepContext) -> Variant:
        from . import _pt2e
        if params.bf16:
            raise UserError("bf16 (kept layers in BF16) works on the torch.ao and torchao paths; "
                            "PT2E compiles one INT8 graph")
        _engines.import_torchao()

        def observe(prepared: nn.Module) -> int:  # weights are observed at convert; one call
            with torch.no_grad():                 # runs the activation observers once
                prepared(*ctx.example.args, **ctx.example.kwargs)
            return 1
        result, _, compile_s = _pt2e.quantize(variant, ctx, dynamic=True, calibrate=observe,
                                              what="another technique", skip=params.skip)
        ctx.decide("api", PT2E)
        ctx.decide("compiled", True)
        why = ("the model is an exported program: its linear layers are graph operators, "
               "which PT2E quantizes" if _engines.is_exported(variant.module) else "api=pt2e")
        ctx.note(f"dynamic INT8 via torchao PT2E ({why}): X86InductorQuantizer with dynamic "
                 f"activation quantization, per-channel INT8 weights; run through torch.compile "
                 f"with freezing: first call took {compile_s:.1f} s; each new batch size "
                 f"compiles once more (static shapes)")
        if params.engine or params.embeddings or not params.per_channel \
                or params.activation != "auto" or params.smoothquant is not None:
            ctx.note("engine/embeddings/per_channel/activation/smoothquant parameters apply to "
                     "the torch.ao and torchao paths only; PT2E used per-channel weights and "
                     "per-tensor activations")
        result.tags["quantization"] = "dynamic_int8"
        return result

    @staticmethod
    def _apis(params: Params, has_rnn: bool, has_linear: bool) -> list[str]:
        torchao_only = params.activation == "per_token" or params.smoothquant is not None
        if torchao_only and (params.api == TORCH_AO or params.engine is not None):
            raise UserError("dynamic_int8: per-token activations and SmoothQuant are torchao's "
                            "(torch.ao quantizes activations per tensor); use api=torchao or "
                            "auto, without engine")
        if torchao_only and (has_rnn or params.embeddings):
            raise UserError("dynamic_int8: per-token activations and SmoothQuant quantize "
                            "nn.Linear only (torchao); LSTM/GRU and embeddings need "
                            "activation=per_tensor")
        if torchao_only or params.api == TORCHAO:
            if not has_linear:
                raise UserError("dynamic_int8 api=torchao quantizes nn.Linear only and this "
                                "model has none; use api=torch.ao (LSTM/GRU)")
            return [TORCHAO]
        if params.api == TORCH_AO or params.engine is not None:
            return [TORCH_AO]
        # torchao cannot quantize LSTM/GRU or embeddings: there it would just be a smaller
        # quantization, so comparing its speed would not be comparing like with like.
        if has_rnn or params.embeddings or not has_linear:
            return [TORCH_AO]
        return [TORCH_AO, TORCHAO]

    @staticmethod
    def _notes(module: nn.Module, api: str, params: Params, has_rnn: bool,
               ctx: StepContext) -> None:
        if api == TORCH_AO:
            ctx.note("torch.ao.quantization.quantize_dynamic is deprecated (torchao is its "
                     "successor); it is used because it is the fastest eager INT8 path here"
                     + (" and the only one for LSTM/GRU" if has_rnn else ""))
            ctx.note("saved state_dict holds packed INT8 weights (~1/4 of FP32 for quantized "
                     "layers); loading it needs torch.load with weights_only=False and a model "
                     "quantized the same way")
            off = sum(1 for m in module.modules() if isinstance(m, nn.TransformerEncoderLayer)
                      and getattr(m, "quantgui_fastpath_off", False))
            if off:
                ctx.decide("fastpath_off_layers", off)
                ctx.note(f"fused transformer fast path turned off in {off} encoder layer(s): it "
                         "needs FP32 Linear weights (otherwise the call crashes)")
        else:
            act = "per-tensor" if params.activation == "per_tensor" else "per-token"
            ctx.note(f"torchao Int8DynamicActivationInt8WeightConfig, {act} activations: eager "
                     f"speed is modest; add a compile step for its fused kernels")
        skipped = [n for n, m in module.named_modules()
                   if isinstance(m, nn.MultiheadAttention)]
        if skipped:
            ctx.note(f"{len(skipped)} MultiheadAttention block(s) keep FP32 projections (their "
                     "in_proj is a raw parameter and out_proj is not dynamically quantizable)")
        ctx.note(f"weights per-{'channel' if params.per_channel else 'tensor'} INT8")

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        api = step.decided("api")
        if api is None:  # a recipe that never ran: what its parameters say, else torch.ao
            api = step.param("api", "auto")
            api = api if api in (TORCHAO, PT2E) else TORCH_AO
        if api == PT2E:
            return NoScript("dynamic INT8 ran through PT2E + torch.compile; that path has no "
                            "script template yet (api=torch.ao and api=torchao have one)")
        if api == TORCHAO:
            if step.param("smoothquant", None) is not None:
                return NoScript("SmoothQuant calibrates on your data; the script has no "
                                "calibration template yet (without smoothquant it has one)")
            return _torchao_script(step)
        return _torch_ao_script(step)

    def why_not_faster(self, ctx):
        return (_engines.subclass_reason(ctx) + _engines.int8_batch_reason(ctx.batch_size)
                + _engines.pt2e_reason(ctx))

    def recommend_hints(self, traits, capabilities):
        im = "inference_mode"
        hints = []
        if traits.linear_heavy or traits.recurrent:
            hints.append(hooks.Hint(("dynamic_int8", im), hooks.LINEAR_INT8,
                                    "Linear/LSTM-heavy: INT8 weights, no calibration"))
        if traits.transformer:
            hints.append(hooks.Hint(("dynamic_int8", im), hooks.TRANSFORMER + 3,
                                    "transformer projections and feed-forward layers in INT8"))
        return hints


TECHNIQUE = DynamicInt8()


def _torchao_script(step):
    weights = "PerRow()" if step.param("per_channel", True) else "PerTensor()"
    act = "PerTensor()" if step.param("activation", "auto") == "per_tensor" else "PerRow()"
    gran = f"[{act}, {weights}]"
    skip = list(step.param("skip", []))
    body = f"""\
import logging
logging.getLogger("torchao").setLevel(logging.ERROR)  # CUDA-library notices on CPU
import torchao.quantization  # noqa: F401
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
from torchao.quantization.granularity import PerRow, PerTensor
from torchao.quantization.quant_api import _is_linear
SKIP = {skip!r}  # layers kept in higher precision (module-name patterns)
# set_inductor_config=False: the default flips process-global inductor settings
# granularity: [activations, weights]
quantize_(model, Int8DynamicActivationInt8WeightConfig(granularity={gran},
                                                       set_inductor_config=False),
          filter_fn=lambda m, name: _is_linear(m, name) and not skipped(name, SKIP))
"""
    body += _layers.bf16_script("nn.Linear,", step)
    return ScriptCode(body, f"dynamic INT8 via torchao ({act[:-2]} activations, {weights[:-2]} "
                      f"weights)", True)


def _torch_ao_script(step):
    p = step.params
    engine = step.decided("engine") or p.get("engine") or "x86"
    why = (f"{engine!r} was set by parameter" if p.get("engine") else
           f"the QuantGUI run measured {engine!r} fastest on this machine and batch")
    qconfig = "per_channel_dynamic_qconfig" if p.get("per_channel", True) \
        else "default_dynamic_qconfig"
    emb = ("\nspec.update({nn.Embedding: float_qparams_weight_only_qconfig,\n"
           "             nn.EmbeddingBag: float_qparams_weight_only_qconfig})"
           if p.get("embeddings") else "")
    skip = list(p.get("skip") or [])
    body = f"""\
from torch.ao.quantization import ({qconfig}, float_qparams_weight_only_qconfig)
spec = {{nn.Linear: {qconfig}, nn.LSTM: {qconfig}, nn.GRU: {qconfig}}}{emb}
SKIP = {skip!r}  # layers kept in higher precision (module-name patterns)
# A module name beats its type in torch.ao's propagation; None keeps the layer float.
spec.update({{n: None for n, m in model.named_modules()
             if isinstance(m, tuple(k for k in spec if isinstance(k, type))) and skipped(n, SKIP)}})
# Packed INT8 weights belong to one quantized engine: {why}.
torch.backends.quantized.engine = {engine!r}
with warnings.catch_warnings():  # torch.ao's deprecation banner: still the fastest here
    warnings.simplefilter("ignore")
    model = torch.ao.quantization.quantize_dynamic(model, spec, inplace=False)
call["engine"] = {engine!r}
# The fused TransformerEncoderLayer fast path reads float Linear weights: turn it off where they
# were packed (otherwise the call crashes with "'function' object has no attribute 'device'").
for m in model.modules():
    if isinstance(m, nn.TransformerEncoderLayer):
        if any(not isinstance(getattr(w, "weight", None), torch.Tensor)
               for w in (m.linear1, m.linear2, m.self_attn.out_proj)):
            m.activation_relu_or_gelu = False
    elif isinstance(m, nn.TransformerEncoder):
        m.use_nested_tensor = False
"""
    body += _layers.bf16_script("nn.Linear, nn.LSTM, nn.GRU, nn.Embedding, nn.EmbeddingBag",
                                step)
    gran = "per-channel" if p.get("per_channel", True) else "per-tensor"
    return ScriptCode(body, f"dynamic INT8 via torch.ao quantize_dynamic, engine {engine}, {gran}")
