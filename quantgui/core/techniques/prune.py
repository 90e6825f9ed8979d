"""Pruning: zero (or remove) the least important weights of Linear and Conv2d layers.

- l1_unstructured: per layer, zero the `amount` fraction of weights with the smallest |w|.
  Dense kernels multiply zeros as fast as any number and the saved file stores them too, so this
  alone changes neither speed nor size; it only pays off with a sparse runtime or compression.
- ln_structured: per layer, zero whole output channels/rows with the smallest L2 norm (the
  output layer is left alone: its rows are the model's outputs). Still dense-sized.
- shrink_linear: physically removes hidden units in Linear -> activation -> Linear chains inside
  nn.Sequential, so the model really gets smaller and faster; accuracy usually needs fine-tuning.

Masks are made permanent (`prune.remove`): no `weight_orig`/`weight_mask` reparametrization and
no forward pre-hooks remain.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.utils.prune as tprune
from torch import nn

from ..errors import UserError
from ..params import param
from . import _engines
from .base import Technique
from .hooks import NoScript, ScriptCode

_PRUNABLE = (nn.Linear, nn.Conv2d)
#: Modules between two Linears that act elementwise, so a hidden unit can be removed whole.
_ELEMENTWISE = (nn.ReLU, nn.ReLU6, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.LeakyReLU, nn.ELU,
                nn.Hardswish, nn.Hardtanh, nn.Mish, nn.Dropout, nn.Identity)


@dataclass
class Params:
    amount: float = param(
        0.5, "Fraction of each layer's weights (or channels/units) to remove. Higher shrinks "
        "more but costs accuracy: past ~0.5 most models need fine-tuning.",
        min=0.0, max=0.95, step=0.05)
    method: str = param(
        "l1_unstructured",
        "l1_unstructured zeroes the smallest weights (no speed or file-size gain by itself); "
        "ln_structured zeroes whole output channels by L2 norm (still dense-sized); "
        "shrink_linear removes hidden units between Linear layers so the model really gets "
        "smaller and faster (accuracy drops more: fine-tune after).",
        choices=("l1_unstructured", "ln_structured", "shrink_linear"))


def _prunable(model: nn.Module) -> list[tuple[str, nn.Module]]:
    out = []
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        # exact torch Tensors only: quantized / torchao tensor subclasses cannot be masked
        if isinstance(m, _PRUNABLE) and isinstance(w, torch.Tensor) and w.is_floating_point() \
                and type(w.data) is torch.Tensor:
            out.append((name, m))
    return out


def sparsity(layers: list[tuple[str, nn.Module]]) -> float:
    total = sum(m.weight.numel() for _, m in layers)
    zeros = sum(int((m.weight == 0).sum()) for _, m in layers)
    return zeros / total if total else 0.0


class Prune(Technique):
    name = "prune"
    title = "Pruning"
    summary = ("Zero or remove the smallest Linear/Conv2d weights. Zeros alone do not speed up "
               "dense kernels; shrink_linear really removes units.")
    Params = Params
    stage = 10
    group = None

    def applies_to(self, model):
        reason = _engines.program_reason(model, "pruning cannot reach its nn.Linear/Conv2d weights")
        if reason:
            return reason
        if not _prunable(model):
            return "no floating-point Linear or Conv2d weights to prune"
        return None

    def apply(self, variant, params, ctx):
        module = variant.module
        if not isinstance(module, nn.Module):
            raise UserError("prune: the model is not an nn.Module")
        if params.method == "shrink_linear":
            return self._shrink(variant, module, params.amount, ctx)
        layers = _prunable(module)
        if not layers:
            raise UserError("prune: no floating-point Linear or Conv2d weights to prune")
        skipped = []
        if params.method == "ln_structured" and len(layers) > 1:
            # Zeroing rows of the last layer would delete outputs (e.g. whole classes).
            skipped.append(layers[-1][0])
            layers = layers[:-1]
        for _, m in layers:
            ctx.task.check()
            if params.method == "l1_unstructured":
                tprune.l1_unstructured(m, "weight", amount=params.amount)
            else:
                tprune.ln_structured(m, "weight", amount=params.amount, n=2, dim=0)
            tprune.remove(m, "weight")  # bake the mask in: plain Parameter, no hook
        measured = sparsity(_prunable(module))
        ctx.metrics["sparsity"] = round(measured, 4)
        ctx.metrics["pruned_layers"] = len(layers)
        kind = ("smallest-|w| weights" if params.method == "l1_unstructured"
                else "output channels/rows with the smallest L2 norm")
        ctx.note(f"{params.method}: zeroed {params.amount:.0%} of the {kind} in {len(layers)} "
                 f"Linear/Conv2d layer(s); measured sparsity over all prunable weights "
                 f"{measured:.1%}" + (f" (output layer {skipped[0]} left whole)" if skipped else ""))
        if skipped:
            ctx.decide("output_layer_kept", skipped[0])
        ctx.note("zeros are stored and multiplied like any other number: dense CPU kernels run "
                 "no faster and the saved file is no smaller (it compresses better); use "
                 "shrink_linear or a sparse runtime for real gains")
        return variant.evolve()

    def _shrink(self, variant, module, amount, ctx):
        before = sum(p.numel() for p in module.parameters())
        changes = []
        for seq in [m for m in module.modules() if isinstance(m, nn.Sequential)]:
            for a, b in _linear_pairs(seq):
                ctx.task.check()
                first, second = seq[a], seq[b]
                keep = max(1, round(first.out_features * (1.0 - amount)))
                if keep >= first.out_features:
                    continue
                # Importance of hidden unit j: L2 norm of what feeds it times what it feeds.
                score = first.weight.detach().float().norm(dim=1) * \
                    second.weight.detach().float().norm(dim=0)
                idx = torch.topk(score, keep).indices.sort().values
                seq[a] = _slice_linear(first, rows=idx)
                seq[b] = _slice_linear(second, cols=idx)
                changes.append(f"{first.out_features}->{keep}")
        if not changes:
            raise UserError("prune shrink_linear: no Linear -> activation -> Linear chain inside an "
                            "nn.Sequential (or amount too small to remove a unit); use "
                            "l1_unstructured or ln_structured")
        after = sum(p.numel() for p in module.parameters())
        ctx.metrics["params_before"] = before
        ctx.metrics["params_after"] = after
        ctx.metrics["sparsity"] = 0.0  # nothing zeroed: the weights are gone
        ctx.note(f"shrink_linear: removed hidden units (smallest |w_in|*|w_out|) in "
                 f"{len(changes)} layer(s) ({', '.join(changes)}); parameters {before:,} -> "
                 f"{after:,} ({after / before:.0%}). Dense and really smaller/faster; accuracy "
                 f"usually needs a few epochs of fine-tuning")
        return variant.evolve()

    def script(self, step):
        amount = float(step.param("amount", 0.5))
        method = step.param("method", "l1_unstructured")
        if method == "shrink_linear":
            return ScriptCode(f"AMOUNT = {amount!r}\n" + _SHRINK_SCRIPT,
                              f"prune shrink_linear: remove {amount:.0%} of hidden units")
        if method == "l1_unstructured":
            loop = ("for m in layers:\n"
                    f"    tprune.l1_unstructured(m, 'weight', amount={amount!r})\n")
        elif method == "ln_structured":
            loop = ("if len(layers) > 1:\n    layers = layers[:-1]  # the output layer stays whole\n"
                    "for m in layers:\n"
                    f"    tprune.ln_structured(m, 'weight', amount={amount!r}, n=2, dim=0)\n")
        else:
            return NoScript(f"prune method '{method}' has no script template")
        loop += "    tprune.remove(m, 'weight')  # bake the mask in\n"
        return ScriptCode(_PRUNE_SCRIPT + loop, f"prune {method} {amount:.0%}")

    def why_not_faster(self, ctx):
        method = str(ctx.step.params.get("method", ""))
        # Only physically removing units (shrink_linear) makes dense kernels do less work.
        if method == "shrink_linear":
            return []
        kind = "unstructured" if "unstructured" in method or not method else "structured"
        return [f"{kind} pruning ({method or 'zeroing'}) leaves every layer dense-sized: the "
                f"kernels still multiply each zero (shrink_linear removes units for real)"]

    def recommend_hints(self, traits, capabilities):
        return []  # zeros do not speed up dense kernels, and removing units costs accuracy


TECHNIQUE = Prune()

# The standalone script's form of the same operations (see script()).
_PRUNE_SCRIPT = """\
import torch.nn.utils.prune as tprune
layers = [m for _, m in model.named_modules()
          if isinstance(m, (nn.Linear, nn.Conv2d)) and isinstance(getattr(m, "weight", None), torch.Tensor)
          and m.weight.is_floating_point() and type(m.weight.data) is torch.Tensor]
"""

_SHRINK_SCRIPT = """\
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


def _linear_pairs(seq: nn.Sequential) -> list[tuple[int, int]]:
    """Index pairs (a, b): seq[a] is Linear, seq[b] the next Linear, only elementwise between."""
    items = list(seq)
    pairs = []
    for a, m in enumerate(items):
        if type(m) is not nn.Linear:
            continue
        b = a + 1
        while b < len(items) and isinstance(items[b], _ELEMENTWISE):
            b += 1
        if b < len(items) and type(items[b]) is nn.Linear:
            pairs.append((a, b))
    return pairs


def _slice_linear(layer: nn.Linear, rows=None, cols=None) -> nn.Linear:
    w = layer.weight.detach()
    bias = layer.bias.detach() if layer.bias is not None else None
    if rows is not None:
        w = w[rows]
        bias = bias[rows] if bias is not None else None
    if cols is not None:
        w = w[:, cols]
    new = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        new.weight.copy_(w)
        if bias is not None:
            new.bias.copy_(bias)
    new.train(layer.training)
    return new
