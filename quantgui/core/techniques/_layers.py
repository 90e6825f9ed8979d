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

def cast_layers(model, patterns, dtype, layer_types):
    """Cast the layers of `layer_types` no skip pattern names to `dtype`, with their float inputs
    cast on the way in and their float outputs back to float32 on the way out, so the layers
    kept (and everything between layers) see float32. Returns the names cast."""
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
    names = []
    for name, m in model.named_modules():
        if name and isinstance(m, layer_types) and not skipped(name, patterns):
            m.to(dtype)
            m.register_forward_pre_hook(inputs_to, with_kwargs=True)
            m.register_forward_hook(outputs_back)
            names.append(name)
    return names


#: Appended to the standalone script's runtime: the same rules, as source.
SCRIPT_HELPERS = "\n\n" + "\n\n".join(inspect.getsource(f) for f in (skipped, cast_layers))
