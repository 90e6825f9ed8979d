"""Layer lists: which of a model's layers a numeric-format step converts and which it keeps in
higher precision (the `skip` parameter every quantization technique has).

A pattern is an fnmatch glob on the qualified module name (`encoder.layer.5.*`, `classifier`,
`sensitive*`); a layer is kept when its own name or the name of a module containing it matches,
so `encoder.layer.5` keeps the whole block. A pattern that matches no module of the model is a
mistake the user hears about (`unmatched`), never silently ignored.

The same rule is written out in the standalone script (`SCRIPT_HELPERS`), so the script keeps
exactly the layers the run kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import inspect
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from ..errors import UserError
from ..layer_names import matching, skipped, unmatched, unmatched_message  # noqa: F401
from ..params import param

SKIP_HELP = ("Layers kept in higher precision: module-name patterns, comma-separated "
             "(fnmatch globs on the qualified name, e.g. encoder.layer.5.*, classifier). A "
             "pattern also keeps everything inside the module it names.")


def skip_param() -> list:
    """The `skip` field of a technique's Params."""
    return param([], SKIP_HELP, label="Keep in higher precision")


@dataclass
class Plan:
    """Which eligible layers a step converts, which it keeps and why."""

    converted: list[str] = field(default_factory=list)
    kept: dict[str, str] = field(default_factory=dict)  # name -> why

    @property
    def converted_set(self) -> set[str]:
        return set(self.converted)

    def record(self, ctx, what: str) -> None:
        """Decisions `converted_layers`, `kept_layers`, `kept_reasons` and a note."""
        ctx.decide("converted_layers", list(self.converted))
        ctx.decide("kept_layers", list(self.kept))
        ctx.decide("kept_reasons", list(self.kept.values()))
        if self.kept:
            shown = ", ".join(list(self.kept)[:5]) + (" ..." if len(self.kept) > 5 else "")
            ctx.note(f"{len(self.converted)} layer(s) in {what}, {len(self.kept)} kept in "
                     f"higher precision: {shown}")


def plan(model: nn.Module, is_layer: Callable[[nn.Module], bool], patterns: Sequence[str],
         eligible: Optional[Callable[[nn.Module], Optional[str]]] = None) -> Plan:
    """The layers `is_layer` selects, split by the skip `patterns` (and by `eligible`: None or
    the reason a layer cannot be converted). UserError when a pattern names no module."""
    names = [n for n, _ in model.named_modules()]
    missing = unmatched(names, patterns)
    if missing:
        raise UserError(unmatched_message(missing, names))
    out = Plan()
    for name, module in model.named_modules():
        if not name or not is_layer(module):
            continue
        pattern = matching(name, patterns)
        reason = f"skip pattern {pattern!r}" if pattern else eligible(module) if eligible else None
        if reason:
            out.kept[name] = reason
        else:
            out.converted.append(name)
    return out


def of_types(*types: type) -> Callable[[nn.Module], bool]:
    return lambda m: isinstance(m, types)


# --- the rules the standalone script repeats (their source is copied into it) ------------------

def cast_named(model, names, dtype):
    """Cast the modules named in `names` to `dtype`, with their float inputs cast on the way
    in and their float outputs back to float32 on the way out, so everything around them
    sees float32."""
    def conv(x, to):
        if isinstance(x, torch.Tensor):
            return x.to(to) if x.is_floating_point() else x
        if isinstance(x, (tuple, list)):
            return type(x)(conv(i, to) for i in x)
        return x

    def inputs_to(_m, args, kwargs):
        return conv(args, dtype), {k: conv(v, dtype) for k, v in kwargs.items()}

    def outputs_back(_m, _args, out):
        return conv(out, torch.float32)
    for name in names:
        m = model.get_submodule(name)
        m.to(dtype)
        m.register_forward_pre_hook(inputs_to, with_kwargs=True)
        m.register_forward_hook(outputs_back)
    return list(names)


def cast_layers(model, patterns, dtype, layer_types):
    """Cast the layers of `layer_types` no skip pattern names to `dtype` (`cast_named`);
    returns their names."""
    return cast_named(model, [n for n, m in model.named_modules()
                              if n and isinstance(m, layer_types) and not skipped(n, patterns)],
                      dtype)


#: Appended to the standalone script's runtime: the same rules, as source.
SCRIPT_HELPERS = "\n\n" + "\n\n".join(inspect.getsource(f)
                                        for f in (skipped, cast_named, cast_layers))

BF16_HELP = ("Of the layers kept out of INT8 by skip, these (patterns, comma-separated; * for "
             "all of them) run in BF16 instead of FP32: mixed precision. Only on CPUs with "
             "native BF16 (AVX512-BF16/AMX); elsewhere BF16 is emulated and slower than FP32.")


def bf16_param() -> list:
    """The `bf16` field of an INT8 technique's Params (mixed precision)."""
    return param([], BF16_HELP, label="Kept layers in BF16")


def require_bf16(patterns: Sequence[str]) -> None:
    """Before any work: BF16 layers only where the CPU computes BF16 natively."""
    from ..env import has_fast_bf16
    if patterns and not has_fast_bf16():
        raise UserError("bf16: this CPU has no AVX512-BF16/AMX, so BF16 layers would be "
                        "emulated in FP32 and slower than keeping them FP32; leave bf16 empty")


def bf16_fallback(module: nn.Module, plan: Plan, patterns: Sequence[str], ctx) -> list[str]:
    """Cast the kept layers `patterns` name to BF16 (mixed precision: INT8 / BF16 / FP32 per
    layer); decides `bf16_layers`. UserError when this CPU has no native BF16 or a pattern
    names no kept layer."""
    if not patterns:
        return []
    require_bf16(patterns)
    names = [n for n in plan.kept if matching(n, patterns)]
    missing = [p for p in patterns if not any(matching(n, [p]) for n in plan.kept)]
    if missing:
        raise UserError(f"bf16 pattern{'s' if len(missing) > 1 else ''} "
                        f"{', '.join(repr(p) for p in missing)} name{'' if len(missing) > 1 else 's'}"
                        f" no layer kept out of INT8 (bf16 picks among the skip list's layers)")
    cast_named(module, names, torch.bfloat16)
    ctx.decide("bf16_layers", names)
    ctx.note(f"mixed precision: {len(names)} kept layer(s) in BF16 (inputs cast in, outputs "
             f"back to FP32), {len(plan.kept) - len(names)} in FP32, {len(plan.converted)} in "
             f"INT8")
    return names


def bf16_script(layer_types: str, step) -> str:
    """The script lines that repeat `bf16_fallback` (after the INT8 conversion)."""
    patterns = list(step.param("bf16", []))
    if not patterns:
        return ""
    return (f"BF16 = {patterns!r}  # kept layers that run in BF16 (mixed precision)\n"
            f"cast_named(model, [n for n, m in model.named_modules() if isinstance(m, "
            f"({layer_types})) and skipped(n, SKIP) and skipped(n, BF16)], torch.bfloat16)\n")
