"""Freeze (optimize for inference): bake weights in as constants and fold what inference allows.

Two engines do this:
- TorchScript: trace (or script) + torch.jit.freeze + torch.jit.optimize_for_inference folds
  Conv+BatchNorm, pre-packs weights for oneDNN and fuses Conv+ReLU. Builds in about a second,
  but TorchScript is deprecated and fails on tensor subclasses (torchao) and some models.
- torch.compile with freezing: the same folding inside Inductor, plus kernel fusion; costs 13-22 s
  on a cold inductor cache (pitfall 12).
`auto` builds the cheap one first and times it against the unfrozen model; only when TorchScript
fails or gains nothing does it spend a compile and keep whichever was faster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
import warnings

import torch
from torch import nn

from ..errors import Cancelled, UserError, clean_message
from ..model.inputs import Inputs
from ..params import param
from . import hooks
from ._compile_util import (compile_script, compile_variant, max_rel_diff, output_of, rewarm,
                            time_ratio)
from .base import Technique
from .hooks import ScriptCode

#: A TorchScript result must give at least this speedup in `auto` before compile is skipped.
_WORTH_IT = 1.05


@dataclass
class Params:
    method: str = param(
        "auto", "auto: build TorchScript (about 1 s), time it against the unfrozen model and keep "
        "it if it is faster; otherwise also try torch.compile with freezing (13-22 s cold) and "
        "keep the faster. torchscript / compile: force one engine (TorchScript is deprecated and "
        "fails on some models; compile takes seconds on the first call).",
        choices=("auto", "torchscript", "compile"))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (clean_message(text.splitlines()[0]) if text else type(exc).__name__)[:200]


def _tolerance(variant) -> float:
    low = variant.input_dtype in (torch.float16, torch.bfloat16) or variant.autocast_dtype
    return 3e-2 if low else 1e-3


def _script(module: nn.Module, prepared: Inputs, variant, ctx) -> tuple[Any, str, str, bool]:
    """A frozen, inference-optimized ScriptModule checked against eager, or an exception:
    (module, detail, "trace" | "script", optimize_for_inference applied)."""
    reference = output_of(variant, prepared)
    small, small_ref = (prepared.slice(0, 2) if prepared.batch_size > 2 else None), None
    if small is not None:
        try:
            small_ref = output_of(variant, small)
        except Exception:  # noqa: BLE001 - dim 0 is not the batch for this model: skip check
            small = None
    errors = []
    for how in ("trace", "script"):
        try:
            # Trace under the variant's own call context so autocast casts and the quantized
            # engine are what the graph records.
            with warnings.catch_warnings(), variant.context():
                warnings.simplefilter("ignore")  # TorchScript deprecation and tracer warnings
                if how == "trace":
                    scripted = torch.jit.trace(
                        module, example_inputs=tuple(prepared.args) or None,
                        example_kwarg_inputs=dict(prepared.kwargs) or None,
                        strict=False, check_trace=False)
                else:
                    scripted = torch.jit.script(module)
                frozen = torch.jit.freeze(scripted.eval())
                try:
                    frozen = torch.jit.optimize_for_inference(frozen)
                    detail, optimized = f"{how} + freeze + optimize_for_inference", True
                except Exception as exc:  # noqa: BLE001 - freezing alone is still worth keeping
                    detail = f"{how} + freeze (optimize_for_inference failed: {_first_line(exc)})"
                    optimized = False
            candidate = variant.evolve(module=frozen)
            # A trace records one path through Python control flow and may bake in shapes:
            # check the example and a smaller batch before trusting it.
            for inp, ref in ((prepared, reference), (small, small_ref)):
                if inp is None:
                    continue
                for _ in range(2):  # the profiling executor optimizes on the second run
                    got = output_of(candidate, inp)
                diff = max_rel_diff(ref, got)
                if diff > _tolerance(variant):
                    raise RuntimeError(f"output differs from eager by {diff:.3g}")
            ctx.task.check()
            return frozen, detail, how, optimized
        except Exception as exc:  # noqa: BLE001 - TorchScript fails in many ways; report them
            if isinstance(exc, (UserError, Cancelled)):
                raise
            errors.append(f"{how}: {_first_line(exc)}")
    raise RuntimeError("; ".join(errors))


class Freeze(Technique):
    name = "freeze"
    title = "Freeze (optimize for inference)"
    summary = ("Bake weights in as constants, fold Conv+BatchNorm and pre-pack weights "
               "(TorchScript or torch.compile, whichever is faster here).")
    Params = Params
    stage = 50
    group = 'graph'

    def applies_to(self, model):
        return None  # both engines handle any nn.Module; failures are explained in apply

    def apply(self, variant, params, ctx):
        if variant.tags.get("compiled") or variant.tags.get("torchscript"):
            raise UserError("freeze: the model is already compiled/frozen by an earlier step")
        module = variant.module
        if not isinstance(module, nn.Module):
            raise UserError("freeze: the model is not an nn.Module")
        module.eval()
        prepared = variant.prepare(ctx.example)

        ts_variant, ts_error, ts_ratio, detail = None, None, None, ""
        ts_decisions: dict[str, Any] = {}
        if params.method in ("auto", "torchscript"):
            ctx.task.report("convert", 0, 1, "freeze: building TorchScript")
            try:
                frozen, detail, how, optimized = _script(module, prepared, variant, ctx)
                ts_decisions = {"method": "torchscript", "how": how,
                                "optimize_for_inference": optimized, "compiled": False}
                ts_variant = variant.evolve(module=frozen)
                ts_variant.tags.update({"torchscript": True, "eager_module": module,
                                        "graph": f"TorchScript ({detail})"})
            except RuntimeError as exc:
                ts_error = str(exc)
            ctx.task.report("convert", 1, 1, "freeze: TorchScript done")
        if params.method == "torchscript":
            if ts_variant is None:
                raise UserError(f"freeze: TorchScript could not freeze this model ({ts_error}); "
                                f"use method=compile")
            ts_variant.tags["freeze_method"] = "torchscript"
            _decide_all(ctx, ts_decisions)
            ctx.note(f"freeze: TorchScript {detail}; TorchScript is "
                     f"deprecated in PyTorch 2.x but still runs")
            return ts_variant

        if ts_variant is not None:
            ts_ratio, base_ms, ts_ms = time_ratio(
                lambda: variant.run_prepared(prepared), lambda: ts_variant.run_prepared(prepared),
                ctx.task)
            ctx.metrics["torchscript_speedup"] = round(ts_ratio, 3)
            if params.method == "auto" and ts_ratio >= _WORTH_IT:
                ctx.note(f"freeze auto: chose TorchScript ({detail}): "
                         f"measured {ts_ratio:.2f}x over the unfrozen model here ({base_ms:.2f} -> "
                         f"{ts_ms:.2f} ms); torch.compile(freezing) was not tried because it costs "
                         f"13-22 s cold (method=compile to compare)")
                ts_variant.tags["freeze_method"] = "torchscript"
                _decide_all(ctx, ts_decisions)
                return ts_variant

        why = (f"TorchScript failed ({ts_error})" if ts_variant is None else
               f"TorchScript gained only {ts_ratio:.2f}x")
        if params.method == "auto":
            ctx.note(f"freeze auto: {why}; trying torch.compile with freezing")
        compiled = compile_variant(variant, ctx, freezing=True, label="torch.compile(freezing)")
        compiled.tags.update({"graph": "torch.compile (freezing)", "freeze_method": "compile"})
        compiled_decisions = {"method": "compile", "compiled": True,
                              "eager_fallback": bool(compiled.tags.get("compiled_eager_fallback"))}
        if params.method == "compile" or ts_variant is None:
            _decide_all(ctx, compiled_decisions)
            if params.method == "auto":
                ctx.note("freeze auto: chose torch.compile(freezing) — TorchScript did not work")
            return compiled
        c_ratio, _, c_ms = time_ratio(lambda: variant.run_prepared(prepared),
                                      lambda: compiled.run_prepared(prepared), ctx.task)
        ctx.metrics["compile_speedup"] = round(c_ratio, 3)
        best_is_compile = c_ratio > ts_ratio
        ctx.note(f"freeze auto: chose {'torch.compile(freezing)' if best_is_compile else 'TorchScript'}"
                 f" — measured over the unfrozen model: TorchScript {ts_ratio:.2f}x, "
                 f"compile {c_ratio:.2f}x" + ("" if max(ts_ratio, c_ratio) >= _WORTH_IT else
                                              "; neither gains much on this model"))
        if best_is_compile:
            _decide_all(ctx, compiled_decisions)
            return compiled
        rewarm(ts_variant, ctx.example, ctx.task)
        ts_variant.tags["freeze_method"] = "torchscript"
        _decide_all(ctx, ts_decisions)
        return ts_variant

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        method = step.decided("method") or ("compile" if step.param("method") == "compile"
                                            else "torchscript")
        if method == "compile":
            return ScriptCode(compile_script("default", True, False),
                              "freeze via torch.compile with freezing (what the run measured "
                              "faster)")
        how = step.decided("how", "trace")
        opt = bool(step.decided("optimize_for_inference", True))
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
        return ScriptCode(body, f"freeze via TorchScript ({how} + freeze"
                          + (" + optimize_for_inference)" if opt else ")"))

    def why_not_faster(self, ctx):
        if ctx.step.decisions.get("eager_fallback"):
            return ["freeze chose torch.compile, which captured no graph: the model ran eager"]
        return []

    def recommend_hints(self, traits, capabilities):
        if not traits.conv_net:
            return []
        why = "conv nets: folds BatchNorm into the convolutions and pre-packs their weights"
        return [hooks.Hint(("channels_last", "freeze", "inference_mode"), hooks.CONV_WINS + 3, why),
                hooks.Hint(("freeze", "inference_mode"), hooks.CONV_WINS + 4, why)]


def _decide_all(ctx, decisions: dict) -> None:
    for key, value in decisions.items():
        ctx.decide(key, value)


TECHNIQUE = Freeze()
