"""PT2E static INT8 (torchao `prepare_pt2e`/`convert_pt2e` with `X86InductorQuantizer`) and the
compiled wrapper it needs to be fast.

Pitfalls this module handles (see notes/torch-cpu.md):
- without inductor freezing the q/dq pairs stay in the graph and INT8 is slower than FP32, but
  `torch.compile(options={"freezing": True})` fails on the INT8 prepack; setting
  `torch._inductor.config.freezing` around the call works, so the wrapper patches it around
  every call (a recompile for a new batch size gets frozen too) without touching the global
  setting other compiled variants see;
- `convert_pt2e` keeps the FP32 weights attached although the graph no longer reads them, so
  the state_dict would be 1.25x FP32: unused parameters and buffers are dropped.
"""

from __future__ import annotations

import copy
import time

import torch
from torch import nn

from ..inputs import Inputs


class FrozenCompiledInt8(nn.Module):
    """Calls a PT2E-converted graph through torch.compile with freezing on.

    Only the graph is a registered submodule, so state_dict holds the INT8 weights once
    (no `_orig_mod.` duplicates); the compiled callable is made lazily and not deep-copied
    (a copy compiles again on its first call)."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph
        object.__setattr__(self, "_compiled", None)

    def forward(self, *args, **kwargs):
        if self._compiled is None:
            # dynamic=False: a dynamic-batch recompile of the quantized conv lowering fails
            # inductor's stride assertion (seen on the digits CNN); a static recompile per
            # new batch size works and steady state is what is timed anyway.
            object.__setattr__(self, "_compiled", torch.compile(self.graph, dynamic=False))
        with torch._inductor.config.patch(freezing=True):
            return self._compiled(*args, **kwargs)

    def __deepcopy__(self, memo):
        return FrozenCompiledInt8(copy.deepcopy(self.graph, memo))


def export(model: nn.Module, example: Inputs) -> nn.Module:
    """torch.export with a dynamic batch dimension, so calls at other batch sizes (e.g. the
    short last batch of an evaluation) pass the exported module's shape checks."""
    batch = torch.export.Dim.AUTO

    def dims(t):
        return {0: batch} if isinstance(t, torch.Tensor) and t.dim() > 0 else None
    if example.kwargs:  # keyword inputs: static shapes (dynamic ones would need arg names)
        return torch.export.export(model, example.args, example.kwargs).module()
    shapes = tuple(dims(a) for a in example.args)
    return torch.export.export(model, example.args, dynamic_shapes=shapes).module()


def prepare(model: nn.Module, example: Inputs) -> nn.Module:
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)
    quantizer = X86InductorQuantizer().set_global(get_default_x86_inductor_quantization_config())
    return prepare_pt2e(export(model, example), quantizer)


def convert(prepared: nn.Module) -> nn.Module:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e
    converted = convert_pt2e(prepared)
    drop_unused_attributes(converted)
    return converted


def drop_unused_attributes(graph_module: nn.Module) -> int:
    """Delete parameters/buffers no get_attr node reads (the FP32 originals of folded weights)."""
    used = {n.target for n in graph_module.graph.nodes if n.op == "get_attr"}
    dropped = 0
    names = [n for n, _ in graph_module.named_parameters()] + \
            [n for n, _ in graph_module.named_buffers()]
    for name in names:
        if name in used:
            continue
        owner_path, _, attr = name.rpartition(".")
        owner = graph_module.get_submodule(owner_path) if owner_path else graph_module
        if hasattr(owner, attr):
            delattr(owner, attr)
            dropped += 1
    return dropped


def compile_first_call(module: FrozenCompiledInt8, example: Inputs) -> float:
    """Pay the compile on the example now (seconds) so timings show steady state."""
    start = time.perf_counter()
    with torch.no_grad():
        module(*example.args, **example.kwargs)
    return time.perf_counter() - start
