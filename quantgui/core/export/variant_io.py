"""What an optimized variant is, how it is called once saved, and how a reload is checked.

Shared by save_model.py: the kind of variant decides the order of formats; `CallAs` bakes the
variant's call conventions (input dtype, channels-last, autocast) into a saved file so it takes
the original inputs; `compare` judges a reloaded output with a tolerance set by the lowest
precision involved.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from ..measure import eager_module, has_tensor_subclass_weights
from ..model.inputs import Inputs, primary_output
from ..model.variant import Variant

#: Max abs difference allowed after reload, relative to max(1, max |output|), by precision.
TOLERANCE = {"float64": 1e-6, "float32": 1e-4, "int8": 1e-2, "float16": 5e-3,
             "bfloat16": 2e-2, "exact": 0.0}


@dataclass
class ReloadCheck:
    max_abs_diff: float
    tolerance: float
    precision: str
    output_shape: list[int]
    passed: bool

    def to_json(self) -> dict[str, Any]:
        return {"max_abs_diff": self.max_abs_diff, "tolerance": self.tolerance,
                "precision": self.precision, "output_shape": self.output_shape,
                "passed": self.passed}

    def describe(self) -> str:
        verdict = "matches" if self.passed else "DOES NOT MATCH"
        return (f"reloaded and {verdict} the in-memory model on the example input: max abs "
                f"difference {self.max_abs_diff:.3g} (tolerance {self.tolerance:.3g}, "
                f"{self.precision})")



# ---- what the variant is ---------------------------------------------------------------------

def _is_legacy_quantized(module: Any) -> bool:
    if not isinstance(module, nn.Module):
        return False
    for m in module.modules():
        mod = type(m).__module__
        if mod.startswith(("torch.ao.nn.quantized", "torch.nn.quantized",
                           "torch.ao.nn.intrinsic.quantized")):
            return True
    return False


def classify(variant: Variant) -> tuple[str, Any, list[str]]:
    """(kind, the module to save, notes): kind is scripted | legacy | torchao | pt2e | float."""
    notes = []
    module = variant.module
    eager = eager_module(module, variant.tags)
    if eager is not module or variant.tags.get("compiled"):
        notes.append("torch.compile is not saved (its kernels live in this process): the saved "
                     "model is the eager module underneath; call torch.compile on it after "
                     "loading to get the compiled speed back")
    graph = getattr(eager, "graph", None)
    if variant.tags.get("compiled") and isinstance(graph, torch.fx.GraphModule):
        eager = graph  # PT2E's compiled wrapper: the converted graph is the model
    if isinstance(eager, torch.jit.ScriptModule):
        return "scripted", eager, notes
    api = str(variant.tags.get("quantized_api", "")).lower()
    if _is_legacy_quantized(eager) or api.startswith("torch.ao"):
        return "legacy", eager, notes
    if "pt2e" in api:
        return "pt2e", eager, notes
    if has_tensor_subclass_weights(eager) or "torchao" in api:
        return "torchao", eager, notes
    return "float", eager, notes


ORDER = {"scripted": ("torchscript",), "legacy": ("torchscript", "state_dict"),
         "torchao": ("exported", "state_dict"), "pt2e": ("exported", "state_dict"),
         "float": ("exported", "torchscript", "state_dict")}
WHY = {"scripted": "the model is already TorchScript",
       "legacy": "torch.ao quantized modules keep packed INT8 weights that TorchScript saves "
                 "and torch.export cannot",
       "torchao": "torchao weights are tensor subclasses: torch.export saves them, whole-model "
                  "pickling does not",
       "pt2e": "a PT2E graph is an FX graph that torch.export re-exports as it is",
       "float": "a .pt2 program loads without the architecture code"}


def precision_of(variant: Variant, module: Any, kind: str) -> str:
    dtypes = {variant.input_dtype, variant.autocast_dtype}
    if isinstance(module, nn.Module):
        dtypes |= {t.dtype for t in module.state_dict().values()
                   if isinstance(t, torch.Tensor) and t.is_floating_point()}
    for name in ("bfloat16", "float16"):
        if getattr(torch, name) in dtypes:
            return name
    if kind in ("legacy", "torchao", "pt2e") or variant.quantized_engine:
        return "int8"
    return "float32"


# ---- calling a module the way the variant calls it -------------------------------------------

class CallAs(nn.Module):
    """Bakes the variant's call conventions into the module; all inputs are positional."""

    def __init__(self, module: Any, kw_names: tuple = (), input_dtype=None,
                 channels_last: bool = False, autocast_dtype=None) -> None:
        super().__init__()
        self.module = module
        self.kw_names = tuple(kw_names)
        self.input_dtype = input_dtype
        self.channels_last = channels_last
        self.autocast_dtype = autocast_dtype

    def forward(self, *flat):
        conv = []
        for t in flat:
            if self.input_dtype is not None and t.is_floating_point():
                t = t.to(self.input_dtype)
            if self.channels_last and t.dim() == 4:
                t = t.contiguous(memory_format=torch.channels_last)
            conv.append(t)
        n = len(conv) - len(self.kw_names)
        args, kwargs = conv[:n], dict(zip(self.kw_names, conv[n:]))
        if self.autocast_dtype is not None:
            with torch.autocast("cpu", dtype=self.autocast_dtype):
                return self.module(*args, **kwargs)
        return self.module(*args, **kwargs)


def _flat(example: Inputs) -> tuple[tuple, tuple]:
    for v in (*example.args, *example.kwargs.values()):
        if not isinstance(v, torch.Tensor):
            raise UserError("the example input holds a non-tensor value; only tensors can be "
                            "baked into a saved TorchScript/.pt2 model")
    return tuple(example.args) + tuple(example.kwargs.values()), tuple(example.kwargs)


def deployable(variant: Variant, module: Any, example: Inputs) -> tuple[Any, tuple, bool]:
    """(module to trace/export, flat positional inputs, wrapped?)."""
    flat, names = _flat(example)
    if (variant.input_dtype is None and not variant.channels_last
            and variant.autocast_dtype is None and not names):
        return module, flat, False
    return CallAs(module, names, variant.input_dtype, variant.channels_last,
                  variant.autocast_dtype), flat, True


def compare(reference: torch.Tensor, got: Any, precision: str) -> ReloadCheck:
    out = primary_output(got).detach()
    ref = reference.detach()
    if tuple(out.shape) != tuple(ref.shape):
        return ReloadCheck(math.inf, 0.0, precision, list(out.shape), False)
    if not ref.is_floating_point():
        diff = float((out.long() - ref.long()).abs().max()) if ref.numel() else 0.0
        return ReloadCheck(diff, 0.0, "exact", list(out.shape), diff == 0.0)
    out, ref = out.float(), ref.float()
    scale = max(1.0, float(ref.abs().max())) if ref.numel() else 1.0
    tol = TOLERANCE[precision] * scale
    diff = float((out - ref).abs().max()) if ref.numel() else 0.0
    finite = bool(torch.isfinite(out).all()) == bool(torch.isfinite(ref).all())
    return ReloadCheck(diff, tol, precision, list(out.shape),
                       finite and not math.isnan(diff) and diff <= tol)

