"""Per-technique code templates for the standalone script (see script.py).

Each template turns one step of a finished run into the body of a function
`step_N_name(model, call)` in plain torch (torchao where the run used it). It repeats the run's
*resolved* choices, not its "auto" parameters: the engine, API and freezing method the run
measured and kept are read from the optimized variant's tags and the step's notes/metrics, so
the script does not re-measure and cannot pick differently.

A step without a script form raises `NoScript(reason)`; the generator then writes a function
that raises NotImplementedError with that reason and reports the step as unsupported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional


class NoScript(Exception):
    """This step cannot be written as a standalone script (the message says why)."""


@dataclass
class Resolved:
    """What the run decided, for the templates to read."""

    tags: dict[str, Any] = field(default_factory=dict)
    quantized_engine: Optional[str] = None
    eager: Any = None               # the optimized eager module (None when only JSON is known)
    step: dict[str, Any] = field(default_factory=dict)  # {"name","params","notes","metrics"}
    batch_size: int = 1             # the example's batch (calibration batches derive from it)

    @property
    def params(self) -> dict[str, Any]:
        return self.step.get("params") or {}

    def notes_text(self) -> str:
        return "\n".join(self.step.get("notes") or [])


@dataclass
class StepCode:
    body: str                       # indented 4 spaces inside `def step_N(model, call):`
    summary: str                    # one line: what the step does with which choices
    needs_torchao: bool = False
    #: The step calibrates: this many leading training samples go into calibration.pt.
    calibration_samples: int = 0


def _dynamic_int8(r: Resolved) -> StepCode:
    p = r.params
    api = str(r.tags.get("quantized_api", "")).lower()
    notes = r.notes_text()
    if "pt2e" in api or "via torchao PT2E" in notes:
        raise NoScript("dynamic INT8 ran through PT2E + torch.compile; that path has no script "
                       "template yet (api=torch.ao and api=torchao have one)")
    if not api:  # only the notes are known (a reopened project): read the choice from them
        api = ("torchao" if re.search(r"via torchao|API/engine torchao chosen", notes)
               else "torch.ao eager")
    if api == "torchao":
        gran = "PerRow()" if p.get("per_channel", True) else "PerTensor()"
        body = f"""\
import logging
logging.getLogger("torchao").setLevel(logging.ERROR)  # CUDA-library notices on CPU
import torchao.quantization  # noqa: F401
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
from torchao.quantization.granularity import PerRow, PerTensor
# set_inductor_config=False: the default flips process-global inductor settings
quantize_(model, Int8DynamicActivationInt8WeightConfig(granularity={gran},
                                                       set_inductor_config=False))
"""
        return StepCode(body, f"dynamic INT8 via torchao ({gran[:-2]} weights)", True)
    engine = r.quantized_engine or r.tags.get("engine") or p.get("engine")
    if not engine:
        m = re.search(r"engine (?:torch\.ao/)?(\w+) chosen|API/engine torch\.ao/(\w+) chosen|"
                      r"engine (\w+), set by parameter", notes)
        engine = next((g for g in (m.groups() if m else ()) if g), None) or "x86"
    why = (f"{engine!r} was set by parameter" if p.get("engine") else
           f"the QuantGUI run measured {engine!r} fastest on this machine and batch")
    qconfig = "per_channel_dynamic_qconfig" if p.get("per_channel", True) \
        else "default_dynamic_qconfig"
    emb = ("\nspec.update({nn.Embedding: float_qparams_weight_only_qconfig,\n"
           "             nn.EmbeddingBag: float_qparams_weight_only_qconfig})"
           if p.get("embeddings") else "")
    body = f"""\
from torch.ao.quantization import ({qconfig}, float_qparams_weight_only_qconfig)
spec = {{nn.Linear: {qconfig}, nn.LSTM: {qconfig}, nn.GRU: {qconfig}}}{emb}
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
    gran = "per-channel" if p.get("per_channel", True) else "per-tensor"
    return StepCode(body, f"dynamic INT8 via torch.ao quantize_dynamic, engine {engine}, {gran}")


def _cast(dtype: str) -> Callable[[Resolved], StepCode]:
    def template(r: Resolved) -> StepCode:
        if r.params.get("autocast"):
            return StepCode(f'call["autocast"] = torch.{dtype}\n',
                            f"run under torch.autocast(cpu, {dtype})")
        body = (f"model = model.to(torch.{dtype})  # float params and buffers\n"
                f'call["dtype"] = torch.{dtype}  # float inputs are cast before each call\n')
        return StepCode(body, f"cast weights and inputs to {dtype}")
    return template


def _channels_last(r: Resolved) -> StepCode:
    body = ("model = model.to(memory_format=torch.channels_last)  # 4-D conv weights\n"
            'call["channels_last"] = True  # 4-D inputs too\n')
    return StepCode(body, "channels-last (NHWC) conv weights and inputs")


def _inference_mode(r: Resolved) -> StepCode:
    return StepCode('call["grad_mode"] = "inference_mode"\n', "call under torch.inference_mode()")


_PRUNE_COMMON = """\
import torch.nn.utils.prune as tprune
layers = [m for _, m in model.named_modules()
          if isinstance(m, (nn.Linear, nn.Conv2d)) and isinstance(getattr(m, "weight", None), torch.Tensor)
          and m.weight.is_floating_point() and type(m.weight.data) is torch.Tensor]
"""

_SHRINK = """\
elementwise = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU,
               nn.Hardswish, nn.Hardtanh, nn.Mish, nn.Dropout, nn.Identity)

def sliced(layer, rows=None, cols=None):
    w = layer.weight.detach()
    b = layer.bias.detach() if layer.bias is not None else None
    if rows is not None:
        w, b = w[rows], (b[rows] if b is not None else None)
    if cols is not None:
        w = w[:, cols]
    new = nn.Linear(w.shape[1], w.shape[0], bias=b is not None, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    return new.train(layer.training)

for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
    items = list(seq)
    pairs = []
    for a, m in enumerate(items):
        if type(m) is not nn.Linear:
            continue
        b = a + 1
        while b < len(items) and isinstance(items[b], elementwise):
            b += 1
        if b < len(items) and type(items[b]) is nn.Linear:
            pairs.append((a, b))
    for a, b in pairs:
        first, second = seq[a], seq[b]
        keep = max(1, round(first.out_features * (1.0 - AMOUNT)))
        if keep >= first.out_features:
            continue
        score = first.weight.detach().float().norm(dim=1) * second.weight.detach().float().norm(dim=0)
        idx = torch.topk(score, keep).indices.sort().values
        seq[a] = sliced(first, rows=idx)
        seq[b] = sliced(second, cols=idx)
"""


def _prune(r: Resolved) -> StepCode:
    amount = float(r.params.get("amount", 0.5))
    method = r.params.get("method", "l1_unstructured")
    if method == "shrink_linear":
        return StepCode(f"AMOUNT = {amount!r}\n" + _SHRINK,
                        f"prune shrink_linear: remove {amount:.0%} of hidden units")
    if method == "l1_unstructured":
        loop = ("for m in layers:\n"
                f"    tprune.l1_unstructured(m, 'weight', amount={amount!r})\n")
    elif method == "ln_structured":
        loop = ("if len(layers) > 1:\n    layers = layers[:-1]  # the output layer stays whole\n"
                "for m in layers:\n"
                f"    tprune.ln_structured(m, 'weight', amount={amount!r}, n=2, dim=0)\n")
    else:
        raise NoScript(f"prune method '{method}' has no script template")
    loop += "    tprune.remove(m, 'weight')  # bake the mask in\n"
    return StepCode(_PRUNE_COMMON + loop, f"prune {method} {amount:.0%}")


def _transformer_fastpath(r: Resolved) -> StepCode:
    lines = ["model.eval()", "torch.backends.mha.set_fastpath_enabled(True)"]
    nested = []
    if r.eager is not None and hasattr(r.eager, "named_modules"):
        import torch.nn as nn
        nested = [n for n, m in r.eager.named_modules()
                  if isinstance(m, nn.TransformerEncoder) and getattr(m, "use_nested_tensor", False)]
    if nested and r.params.get("nested_tensor", True):
        lines.append(f"for name in {nested!r}:  # encoders QuantGUI switched to nested tensors")
        lines.append("    enc = model.get_submodule(name)")
        lines.append("    enc.enable_nested_tensor = enc.use_nested_tensor = True")
    if "-> 'sdpa'" in r.notes_text():
        lines.append("if hasattr(model, 'set_attn_implementation'):")
        lines.append("    model.set_attn_implementation('sdpa')")
        lines.append("else:")
        lines.append("    model.config._attn_implementation = 'sdpa'")
    return StepCode("\n".join(lines) + "\n", "transformer fast path on")


def _compile_code(mode: str, freezing: bool, dynamic: bool) -> str:
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


def _compile(r: Resolved) -> StepCode:
    p = r.params
    mode, freezing, dynamic = p.get("mode", "default"), bool(p.get("freezing", True)), \
        bool(p.get("dynamic", False))
    return StepCode(_compile_code(mode, freezing, dynamic),
                    f"torch.compile (mode={mode}, freezing={'on' if freezing else 'off'})")


def _freeze(r: Resolved) -> StepCode:
    method = r.tags.get("freeze_method")
    graph = str(r.tags.get("graph", ""))
    notes = r.notes_text()
    if method is None:  # from notes only
        method = "compile" if "chose torch.compile" in notes else "torchscript"
    if method == "compile":
        return StepCode(_compile_code("default", True, False),
                        "freeze via torch.compile with freezing (what the run measured faster)")
    how = "script" if ("script + freeze" in graph or "script + freeze" in notes) else "trace"
    opt = "optimize_for_inference failed" not in (graph + notes)
    make = ("torch.jit.script(model)" if how == "script" else
            "torch.jit.trace(model, example_inputs=tuple(prepared.args) or None,\n"
            "                    example_kwarg_inputs=dict(prepared.kwargs) or None,\n"
            "                    strict=False, check_trace=False)")
    body = (f"# A frozen module cannot be wrapped later, so the input conversion (dtype cast,\n"
            f"# channels-last) is traced into it now and the model takes the original inputs.\n"
            f"prepared = EXAMPLE\n"
            f"if call['dtype'] is not None or call['channels_last'] or call['autocast'] is not None:\n"
            f"    model = Deployable(model, call, EXAMPLE.kwargs).eval()\n"
            f"    prepared = Inputs(EXAMPLE.flat())\n"
            f"    call.update(dtype=None, channels_last=False, autocast=None)\n"
            f"with torch.no_grad():\n"
            f"    scripted = {make}\n"
            f"    model = torch.jit.freeze(scripted.eval())\n"
            + "    SAVEABLE['model'] = model  # optimize_for_inference's prepacked weights do not reload\n"
            + ("    model = torch.jit.optimize_for_inference(model)\n" if opt else "")
            + "run(model, call, EXAMPLE)  # the profiling executor optimizes on early calls\n")
    return StepCode(body, f"freeze via TorchScript ({how} + freeze"
                    + (" + optimize_for_inference)" if opt else ")"))


_OBSERVERS = {"histogram": "HistogramObserver", "minmax": "MinMaxObserver",
              "moving_average": "MovingAverageMinMaxObserver"}


def _static_int8(r: Resolved) -> StepCode:
    p = r.params
    api = str(r.tags.get("quantized_api", "")).lower()
    if "pt2e" in api or "falling back to PT2E" in r.notes_text():
        raise NoScript("static INT8 ran through PT2E + torch.compile; that path has no script "
                       "template yet (api=fx has one)")
    engine = r.quantized_engine or r.tags.get("engine") or p.get("engine") or "x86"
    backend = p.get("engine") or "x86"          # the mapping QuantGUI built (engine param)
    reduce_range = p.get("engine") in (None, "x86", "fbgemm")
    observer = _OBSERVERS[p.get("observer", "histogram")]
    weight = ("PerChannelMinMaxObserver.with_args(dtype=torch.qint8, "
              "qscheme=torch.per_channel_symmetric)" if p.get("per_channel", True) else
              "MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)")
    batches, size = int(p.get("batches", 16)), max(r.batch_size, 32)
    why = (f"{engine!r} was set by parameter" if p.get("engine") else
           f"the QuantGUI run measured {engine!r} fastest on this machine and batch")
    body = f"""\
from torch.ao.quantization import (HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver,
                                   PerChannelMinMaxObserver, QConfig, get_default_qconfig_mapping)
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
mapping = get_default_qconfig_mapping({backend!r}).set_global(QConfig(
    activation={observer}.with_args(reduce_range={reduce_range!r}),
    weight={weight}))
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
    return StepCode(body, f"static INT8 via torch.ao FX ({p.get('observer', 'histogram')} "
                    f"observer, {batches} calibration batch(es)), engine {engine}",
                    calibration_samples=batches * size)


def _weight_only_int8(r: Resolved) -> StepCode:
    group = int(r.params.get("group_size", 0) or 0)
    gran = f"PerGroup({group})" if group else "PerRow()"
    body = f"""\
import logging
logging.getLogger("torchao").setLevel(logging.ERROR)  # CUDA-library notices on CPU
import torchao.quantization  # noqa: F401
from torchao.quantization import Int8WeightOnlyConfig, quantize_
from torchao.quantization.granularity import PerGroup, PerRow
eligible = {{id(m) for m in model.modules() if type(m) is nn.Linear
            and ({group} == 0 or m.in_features % {group or 1} == 0)}}
quantize_(model.eval(), Int8WeightOnlyConfig(granularity={gran}, set_inductor_config=False),
          filter_fn=lambda m, _name: id(m) in eligible)
"""
    what = "per-row" if not group else f"groups of {group}"
    return StepCode(body, f"weight-only INT8 via torchao ({what} scales)",
                    True)


TEMPLATES: dict[str, Callable[[Resolved], StepCode]] = {
    "static_int8": _static_int8,
    "weight_only_int8": _weight_only_int8,
    "prune": _prune,
    "transformer_fastpath": _transformer_fastpath,
    "dynamic_int8": _dynamic_int8,
    "fp16": _cast("float16"),
    "bf16": _cast("bfloat16"),
    "channels_last": _channels_last,
    "freeze": _freeze,
    "compile": _compile,
    "inference_mode": _inference_mode,
}


def step_code(r: Resolved) -> StepCode:
    name = r.step.get("name", "")
    template = TEMPLATES.get(name)
    if template is None:
        raise NoScript(f"'{name}' has no script template yet; QuantGUI ran it, but this script "
                       f"cannot repeat it")
    return template(r)
