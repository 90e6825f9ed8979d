"""The same optimizations written by hand in plain torch / torchao, in every form worth trying.

Nothing here imports quantgui: this is the reference a careful engineer would write without the
app. Each technique is a function `(HandModel, ctx) -> list[HandModel]` returning one candidate
per *form* (e.g. one per quantized engine); the benchmark races the forms on the real input and
keeps the fastest, so QuantGUI is compared with the best a human would find on this machine.

A `HandModel` is a module plus how it is called (input dtype / memory format, grad mode,
quantized engine, MHA fast-path switch), like QuantGUI's Variant but independent of it.
Techniques compose: a combination applies each technique to every form of the one before.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Optional

import torch
from torch import nn

ENGINES = [e for e in ("x86", "onednn", "fbgemm") if e in torch.backends.quantized.supported_engines]


@dataclass
class HandCtx:
    example: Any                     # tensor, tuple or dict (the timed input)
    calib: list                      # a few calibration inputs, same structure as example
    train: Optional[list] = None     # [(input, label)] batches for QAT, or None
    compile_ok: bool = False         # allow torch.compile-based forms (slow first call)
    quick: bool = False              # fewer forms: only those matching QuantGUI's defaults


@dataclass
class HandModel:
    module: Any
    form: list = field(default_factory=list)
    input_dtype: Optional[torch.dtype] = None
    channels_last: bool = False
    grad_mode: str = "no_grad"
    engine: Optional[str] = None     # set process-wide for a timed block
    fastpath: bool = True            # torch.backends.mha fast path
    autocast: Optional[torch.dtype] = None

    def evolve(self, form: str, **kw) -> "HandModel":
        return replace(self, form=self.form + [form], **kw)

    @property
    def label(self) -> str:
        return " + ".join(self.form) or "fp32 eager"

    def prepare(self, x: Any) -> Any:
        def conv(t):
            if not isinstance(t, torch.Tensor):
                return t
            if self.input_dtype is not None and t.is_floating_point():
                t = t.to(self.input_dtype)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            return t
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        if isinstance(x, (tuple, list)):
            return tuple(conv(v) for v in x)
        return conv(x)

    @contextlib.contextmanager
    def block(self):
        """Process-wide settings held for a timed block (what a script sets once at start)."""
        prev_engine = torch.backends.quantized.engine
        prev_fast = torch.backends.mha.get_fastpath_enabled()
        if self.engine:
            torch.backends.quantized.engine = self.engine
        torch.backends.mha.set_fastpath_enabled(self.fastpath)
        try:
            yield
        finally:
            torch.backends.quantized.engine = prev_engine
            torch.backends.mha.set_fastpath_enabled(prev_fast)

    def caller(self, x: Any) -> Callable[[], Any]:
        """A zero-argument function that runs one forward on the prepared input."""
        m, p = self.module, self.prepare(x)
        grad = torch.inference_mode if self.grad_mode == "inference_mode" else torch.no_grad
        ac = self.autocast
        if isinstance(p, dict):
            if ac is None:
                def run():
                    with grad():
                        return m(**p)
            else:
                def run():
                    with grad(), torch.autocast("cpu", dtype=ac):
                        return m(**p)
        else:
            args = p if isinstance(p, tuple) else (p,)
            if ac is None:
                def run():
                    with grad():
                        return m(*args)
            else:
                def run():
                    with grad(), torch.autocast("cpu", dtype=ac):
                        return m(*args)
        return run

    def output(self, x: Any) -> torch.Tensor:
        with self.block():
            out = self.caller(x)()
        return first_tensor(out).detach().float()


def first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    for key in ("logits", "last_hidden_state"):
        v = out.get(key) if isinstance(out, dict) else getattr(out, key, None)
        if isinstance(v, torch.Tensor):
            return v
    if isinstance(out, dict):
        out = list(out.values())
    for item in out:
        if isinstance(item, torch.Tensor):
            return item
    raise TypeError(type(out))


def _args(x):
    return (x,) if isinstance(x, torch.Tensor) else tuple(x) if isinstance(x, (tuple, list)) else ()


def _kwargs(x):
    return dict(x) if isinstance(x, dict) else {}


def _call(m, x):
    return m(*_args(x), **_kwargs(x))


def _has(module, *types) -> bool:
    return any(isinstance(m, types) for m in module.modules())


def _uses_mha(module) -> bool:
    return _has(module, nn.MultiheadAttention)


# --------------------------------------------------------------------------------------- forms

def _layer_fastpath_off(model: nn.Module) -> nn.Module:
    """The expert's trick: turn the fused encoder-layer path off per layer (its forward checks
    `activation_relu_or_gelu`), so MultiheadAttention's own fused kernel still runs."""
    for m in model.modules():
        if isinstance(m, nn.TransformerEncoderLayer):
            m.activation_relu_or_gelu = False
        elif isinstance(m, nn.TransformerEncoder):
            m.use_nested_tensor = False
    return model


def dynamic_int8(h: HandModel, ctx: HandCtx) -> list[HandModel]:
    from torch.ao.quantization import default_dynamic_qconfig, per_channel_dynamic_qconfig
    out = []
    mha = _uses_mha(h.module)  # legacy dynamic + MHA fast path crashes: turn it off
    specs = [] if ctx.quick else [("", {nn.Linear, nn.LSTM, nn.GRU})]
    if _has(h.module, nn.Linear) or not specs:
        specs.append((" per-channel", {nn.Linear: per_channel_dynamic_qconfig,
                                        nn.LSTM: default_dynamic_qconfig,
                                        nn.GRU: default_dynamic_qconfig}))
    for eng in ENGINES:
        for label, spec in specs:
            with _engine(eng):
                q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(h.module), spec,
                                                           dtype=torch.qint8)
            if not mha:
                out.append(h.evolve(f"quantize_dynamic{label}[{eng}]", module=q, engine=eng))
                continue
            out.append(h.evolve(f"quantize_dynamic{label}[{eng}] fastpath off", module=q,
                                engine=eng, fastpath=False))
            out.append(h.evolve(f"quantize_dynamic{label}[{eng}] layer fastpath off",
                                module=_layer_fastpath_off(copy.deepcopy(q)), engine=eng))
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
        m = copy.deepcopy(h.module)
        quantize_(m, _no_inductor(Int8DynamicActivationInt8WeightConfig()))
        out.append(h.evolve("torchao int8 dyn", module=m))
    except Exception as exc:  # pragma: no cover - reported, not fatal
        warnings.warn(f"torchao int8 dynamic: {exc}")
    return out


def _no_inductor(cfg):
    """torchao configs flip global inductor settings by default; a script that also compiles
    other models must not inherit them."""
    if hasattr(cfg, "set_inductor_config"):
        cfg.set_inductor_config = False
    return cfg


@contextlib.contextmanager
def _engine(name):
    prev = torch.backends.quantized.engine
    torch.backends.quantized.engine = name
    try:
        yield
    finally:
        torch.backends.quantized.engine = prev


def static_int8(h: HandModel, ctx: HandCtx, qat: bool = False) -> list[HandModel]:
    from torch.ao.quantization import get_default_qconfig_mapping, get_default_qat_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx, prepare_qat_fx
    out = []
    for eng in ENGINES:
        try:
            with _engine(eng):
                m = copy.deepcopy(h.module)
                ex = _args(ctx.example)
                if qat:
                    m.train()
                    prepared = prepare_qat_fx(m, get_default_qat_qconfig_mapping(eng), ex)
                    opt = torch.optim.SGD(prepared.parameters(), lr=1e-4, momentum=0.9)
                    for x, y in (ctx.train or [])[:5 if ctx.quick else 20]:
                        opt.zero_grad()
                        nn.functional.cross_entropy(first_tensor(_call(prepared, x)), y).backward()
                        opt.step()
                    prepared.eval()
                else:
                    prepared = prepare_fx(m, get_default_qconfig_mapping(eng), ex)
                with torch.no_grad():
                    for x in ctx.calib:
                        _call(prepared, x)
                q = convert_fx(prepared)
            out.append(h.evolve(f"FX {'QAT' if qat else 'static'}[{eng}]", module=q, engine=eng))
        except Exception as exc:
            warnings.warn(f"FX static {eng}: {type(exc).__name__}: {exc}")
    if ctx.compile_ok:
        try:
            out.append(_pt2e(h, ctx))
        except Exception as exc:
            warnings.warn(f"PT2E: {type(exc).__name__}: {exc}")
    return out


def _pt2e(h: HandModel, ctx: HandCtx) -> HandModel:
    import torch._inductor.config as icfg
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    quantizer = xiq.X86InductorQuantizer().set_global(xiq.get_default_x86_inductor_quantization_config())
    ep = torch.export.export(copy.deepcopy(h.module), _args(ctx.example), _kwargs(ctx.example)).module()
    prepared = prepare_pt2e(ep, quantizer)
    for x in ctx.calib:
        _call(prepared, x)
    q = convert_pt2e(prepared)
    torch._dynamo.reset()
    compiled = torch.compile(q)
    with torch.no_grad(), icfg.patch(freezing=True):
        _call(compiled, ctx.example)
    return h.evolve("PT2E x86 + compile(freezing)", module=compiled)


def qat_int8(h, ctx):
    return static_int8(h, ctx, qat=True)


def weight_only_int8(h, ctx):
    from torchao.quantization import Int8WeightOnlyConfig, quantize_
    m = copy.deepcopy(h.module)
    quantize_(m, _no_inductor(Int8WeightOnlyConfig()))
    return [h.evolve("torchao int8 weight-only", module=m)]


def weight_only_int4(h, ctx, group_size: int = 128):
    """torchao's prototype CPU INT4 (the official Int4WeightOnlyConfig has no CPU kernel);
    bf16 activations (FP32 ones are ~100x slower)."""
    from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
    from torchao.quantization import quantize_
    m = copy.deepcopy(h.module).to(torch.bfloat16)

    def ok(mod, _name):
        return (type(mod) is nn.Linear and mod.out_features % 16 == 0
                and mod.in_features % group_size == 0)
    quantize_(m, _no_inductor(PrototypeInt4WeightOnlyConfig(group_size=group_size)), filter_fn=ok)
    return [h.evolve(f"prototype int4 wo g{group_size} bf16", module=m, input_dtype=torch.bfloat16)]


def fp16(h, ctx):
    out = [h.evolve("half()", module=copy.deepcopy(h.module).half(), input_dtype=torch.float16)]
    if not ctx.quick:
        out.append(h.evolve("autocast fp16", autocast=torch.float16))
    return out


def bf16(h, ctx):
    return [h.evolve("to(bfloat16)", module=copy.deepcopy(h.module).to(torch.bfloat16),
                     input_dtype=torch.bfloat16),
            h.evolve("autocast bf16", autocast=torch.bfloat16)]


def channels_last(h, ctx):
    m = h.module
    if isinstance(m, nn.Module) and not isinstance(m, torch.jit.ScriptModule):
        m = copy.deepcopy(m).to(memory_format=torch.channels_last)
    return [h.evolve("channels_last", module=m, channels_last=True)]


def inference_mode(h, ctx):
    return [h.evolve("inference_mode", grad_mode="inference_mode")]


def freeze(h, ctx):
    out = []
    x = h.prepare(ctx.example)
    for how in ("script", "trace"):
        try:
            with h.block(), torch.no_grad():
                m = copy.deepcopy(h.module).eval()
                if how == "script":
                    sm = torch.jit.script(m)
                else:
                    sm = torch.jit.trace(m, example_kwarg_inputs=x if isinstance(x, dict) else None,
                                         example_inputs=None if isinstance(x, dict) else _args(x),
                                         strict=False, check_trace=False)
                fm = torch.jit.optimize_for_inference(torch.jit.freeze(sm))
                for _ in range(3):  # profiling executor specializes on the first calls
                    _call(fm, x)
            out.append(h.evolve(f"jit.{how}+freeze+optimize_for_inference", module=fm))
        except Exception as exc:
            warnings.warn(f"freeze {how}: {type(exc).__name__}: {str(exc)[:200]}")
    return out


def prune(h, ctx, amount: float = 0.5):
    import torch.nn.utils.prune as P
    m = copy.deepcopy(h.module)
    for mod in m.modules():
        if isinstance(mod, (nn.Linear, nn.Conv2d, nn.Conv1d)):
            P.l1_unstructured(mod, "weight", amount=amount)
            P.remove(mod, "weight")
    return [h.evolve(f"l1_unstructured {amount}", module=m)]


def transformer_fastpath(h, ctx):
    """nn.MultiheadAttention fast path on (eval+no_grad default); HF models: SDPA attention."""
    m = h.module
    cfg = getattr(m, "config", None)
    if cfg is not None and hasattr(m, "set_attn_implementation"):
        m = copy.deepcopy(m)
        try:
            m.set_attn_implementation("sdpa")
        except Exception:
            pass
        return [h.evolve("HF sdpa attention", module=m)]
    return [h.evolve("MHA fast path", fastpath=True)]


def compile(h, ctx):  # noqa: A001 - the technique's name
    import torch._inductor.config as icfg
    out = []
    for freezing in (False, True):
        torch._dynamo.reset()
        m = torch.compile(copy.deepcopy(h.module))
        x = h.prepare(ctx.example)
        with h.block(), torch.no_grad(), icfg.patch(freezing=freezing):
            _call(m, x)
        out.append(h.evolve(f"torch.compile{'(freezing)' if freezing else ''}", module=m))
    return out


TECHNIQUES: dict[str, Callable[..., list[HandModel]]] = {
    "prune": prune, "transformer_fastpath": transformer_fastpath,
    "dynamic_int8": dynamic_int8, "static_int8": static_int8, "qat_int8": qat_int8,
    "weight_only_int8": weight_only_int8, "weight_only_int4": weight_only_int4,
    "fp16": fp16, "bf16": bf16, "channels_last": channels_last, "freeze": freeze,
    "compile": compile, "inference_mode": inference_mode,
}

COMPILE_BASED = {"compile"}


def forms(module: nn.Module, steps: list[str], ctx: HandCtx, cap: int = 12) -> list[HandModel]:
    """Every hand-written form of the recipe `steps` (applied in order), at most `cap`."""
    current = [HandModel(module=module)]
    for name in steps:
        fn = TECHNIQUES[name]
        nxt = []
        for h in current:
            try:
                nxt.extend(fn(h, ctx))
            except Exception as exc:
                warnings.warn(f"hand {name} on {h.label}: {type(exc).__name__}: {str(exc)[:200]}")
        current = list(itertools.islice(nxt, cap))
        if not current:
            return []
    return current
