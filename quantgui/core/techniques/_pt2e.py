"""PT2E INT8 (torchao `prepare_pt2e`/`convert_pt2e` with `X86InductorQuantizer`), static or with
dynamic activations, and the compiled wrapper it needs to be fast. PT2E quantizes a torch.export
graph, so it is also the INT8 path for models opened as exported programs (.pt2), whose layers
are graph operators no eager quantizer can swap, and for models FX cannot trace (keyword inputs,
e.g. Hugging Face models).

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
from typing import Any, Callable

import torch
from torch import nn

from ..errors import UserError, clean_message
from ..model.inputs import Inputs
from ..model.variant import Variant


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


def prepare(model: nn.Module, example: Inputs, dynamic: bool = False,
            what: str = "another technique", kept: tuple = ()) -> nn.Module:
    """Export (an exported program's module is exported again as it is) and insert observers:
    calibrated ranges (static) or per-call activation ranges (dynamic); weights per channel.
    A model torch.export cannot capture is the user's to know about (a UserError naming `what`
    to try instead)."""
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e
    from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
        X86InductorQuantizer, get_default_x86_inductor_quantization_config)
    config = get_default_x86_inductor_quantization_config(is_dynamic=dynamic)
    quantizer = X86InductorQuantizer().set_global(config)
    for name in kept:  # a skip list: these modules' operators stay float
        quantizer.set_module_name_qconfig(name, None)
    try:
        graph = export(model, example)
    except Exception as exc:
        first = str(exc).split("\n\n")[0]
        raise UserError(f"PT2E could not export this model ({type(exc).__name__}: "
                        f"{clean_message(first)[:160]}); try {what}") from None
    return prepare_pt2e(graph, quantizer)


def quantize(variant: Variant, ctx: Any, dynamic: bool, calibrate: Callable[[nn.Module], int],
             what: str, skip: tuple = ()) -> tuple[Variant, int, float]:
    """Prepare, calibrate (`calibrate(prepared)` -> batches run), convert and compile the
    variant's module; returns (the INT8 variant, batches, first-call seconds). `skip`: the
    step's skip patterns (the Linear/Conv modules they name stay float; an exported program
    has no module names to match, so a skip list there is refused)."""
    kept: tuple = ()
    if skip and _is_exported(variant.module):
        raise UserError("a skip list names modules, and an exported (.pt2) program has none "
                        "(its layers are graph operators); open the eager model to skip layers")
    if not _is_exported(variant.module):
        from . import _layers
        types = (nn.Linear,) if dynamic else (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
        plan = _layers.plan(variant.module, _layers.of_types(*types), list(skip))
        kept = tuple(plan.kept)
        plan.record(ctx, "INT8")
    prepared = prepare(variant.module, ctx.example, dynamic, what, kept)
    count = calibrate(prepared)
    ctx.task.report("convert", 0, 1, "converting to INT8")
    module = FrozenCompiledInt8(convert(prepared))
    ctx.task.report("compile", 0, 1, "compiling (first call, inductor with freezing)")
    compile_s = compile_first_call(module, ctx.example)
    ctx.metrics["compile_s"] = round(compile_s, 2)
    result = variant.evolve(module=module, quantized_engine=None)
    result.tags.update({"quantized_api": "torchao PT2E", "compiled": True})
    return result, count, compile_s


def _is_exported(module: nn.Module) -> bool:
    from ._engines import is_exported
    return is_exported(module)


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
