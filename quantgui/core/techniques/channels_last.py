"""Channels-last memory format for convolution models.

oneDNN's convolutions are fastest on NHWC (channels-last) tensors; a contiguous NCHW model pays a
reorder around every convolution. Converting the weights once and the 4-D inputs per call removes
those reorders (measured 1.7x on the digits CNN; more combined with BF16 or compile). Values do
not change, only the layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from . import _engines, hooks
from .base import Technique
from .hooks import ScriptCode


def conv2d_count(model: nn.Module) -> int:
    """Conv2d layers, also in a TorchScript archive (by original name) or an exported graph (by
    operator): both convert with Module.to(memory_format=...) like any module."""
    if _engines.is_exported(model):
        graph = getattr(model, "graph", None)
        return sum(1 for n in (graph.nodes if graph is not None else ())
                   if n.op == "call_function" and str(n.target).startswith("aten.conv2d"))
    return sum(1 for m in model.modules() if isinstance(m, nn.Conv2d)
               or getattr(m, "original_name", None) == "Conv2d")


@dataclass
class Params:
    pass


class ChannelsLast(Technique):
    name = "channels_last"
    title = "Channels-last"
    summary = ("Store 4-D conv weights and inputs as NHWC, the layout CPU convolution kernels "
               "prefer: faster convs, same values and size.")
    Params = Params
    stage = 40
    group = None

    def applies_to(self, model):
        if not conv2d_count(model):
            return "no Conv2d layers: channels-last only changes 4-D convolution inputs"
        return None

    def apply(self, variant, params, ctx):
        module = variant.module
        # Module.to(memory_format=...) converts only 4-D parameters/buffers (conv weights);
        # everything else is untouched.
        module.to(memory_format=torch.channels_last)
        out = variant.evolve(channels_last=True)
        convs = conv2d_count(module)
        four_d = [t for t in ctx.example.tensors() if t.dim() == 4]
        ctx.note(f"{convs} Conv2d weight(s) and the 4-D inputs are channels-last (NHWC); "
                 f"activations stay channels-last through conv/BN/ReLU/pooling")
        ctx.decide("inputs_4d", bool(four_d))
        if not four_d:
            ctx.note("the example input has no 4-D tensor: only the weights change layout, so "
                     "expect little gain (the first convolution's input is converted each call)")
        return out

    # --- knowledge hooks ------------------------------------------------------------------------

    def script(self, step):
        body = ("model = model.to(memory_format=torch.channels_last)  # 4-D conv weights\n"
                'call["channels_last"] = True  # 4-D inputs too\n')
        return ScriptCode(body, "channels-last (NHWC) conv weights and inputs")

    def why_not_faster(self, ctx):
        if ctx.step.decisions.get("inputs_4d") is False:
            return ["channels-last changed only the weights: the input has no 4-D tensor, so "
                    "the first convolution converts its input on every call"]
        return []

    def recommend_hints(self, traits, capabilities):
        if not traits.conv_net:
            return []
        return [hooks.Hint(("channels_last", "inference_mode"), hooks.CONV_WINS + 1,
                           "conv nets: NHWC is the layout CPU convolution kernels prefer")]


TECHNIQUE = ChannelsLast()
