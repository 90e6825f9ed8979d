"""Facts about an opened model: parameters, serialized size, layer types, which techniques apply.

`model_info(module, source, format, example)` builds the `ModelInfo` the CLI and the model panel
show; `check_weights` refuses weights holding NaN/Inf. Nothing here changes or runs the module:
without an example input (None) every fact but the input itself is still known.
"""

from __future__ import annotations

from collections import Counter
import io
from typing import Optional

import torch
from torch import nn

from ..errors import UserError
from ..model.inputs import Inputs
from ..results import ModelInfo
from .example_input import _few


def _nonfinite(t: torch.Tensor, inf_counts: bool = True) -> int:
    t = t.detach()
    if not t.is_floating_point() or t.is_meta or bool(torch.isfinite(t).all()):
        return 0
    return int((~torch.isfinite(t)).sum()) if inf_counts else int(torch.isnan(t).sum())


def check_weights(module: nn.Module, source: str) -> None:
    """Weights holding NaN/Inf make every output garbage: refused, naming the tensors.

    Parameters count NaN and Inf; buffers only NaN (attention masks legitimately hold -inf),
    except normalisation statistics (running_mean/var), where Inf is as wrong as NaN."""
    counts: dict[str, int] = {}
    total = 0
    for name, t in module.named_parameters():
        total += t.numel()
        counts[name] = _nonfinite(t)
    for name, t in module.named_buffers():
        if isinstance(t, torch.Tensor) and t.is_floating_point():
            total += t.numel()
            counts[name] = _nonfinite(t, name.rsplit(".", 1)[-1].startswith("running_"))
    bad = {k: n for k, n in counts.items() if n}
    if bad:
        raise UserError(f"{source}: {sum(bad.values()):,} of {total:,} weight values are NaN "
                        f"or infinite ({_few(list(bad), 3)})")


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def serialized_size(module: nn.Module) -> int:
    """Bytes of the model as it would be saved: its state_dict via torch.save (the weights a user
    ships); a ScriptModule is measured as its torch.jit.save archive, the form it lives in."""
    buf = io.BytesIO()
    try:
        if isinstance(module, torch.jit.ScriptModule):
            torch.jit.save(module, buf)
        else:
            torch.save(module.state_dict(), buf)
        return buf.getbuffer().nbytes
    except Exception:
        # Some tensor subclasses refuse torch.save; the raw tensor bytes are the honest floor.
        tensors = {id(t): t for t in (*module.parameters(), *module.buffers())}
        return sum(t.numel() * t.element_size() for t in tensors.values())


def _short_type(qualified: object) -> str:
    # nn_module_stack holds either a class or its qualified name as a string.
    name = getattr(qualified, "__name__", None) or str(qualified)
    return name.rsplit(".", 1)[-1]


def _exported_stack_counts(module: nn.Module) -> Optional[Counter]:
    """Layer counts of a torch.export module, read from the graph's nn_module_stack metadata
    (the unlifted module has no real submodules left to walk)."""
    graph = getattr(module, "graph", None)
    if graph is None:
        return None
    leaves: dict[str, str] = {}
    root_type = None
    for node in graph.nodes:
        stack = node.meta.get("nn_module_stack") if hasattr(node, "meta") else None
        if not stack:
            continue
        path, kind = list(stack.values())[-1]  # the deepest module this op ran in
        if path == "":
            root_type = _short_type(kind)
        else:
            leaves[path] = _short_type(kind)
    if not leaves and root_type is None:
        return None
    if not leaves:  # the exported module was itself a single layer
        return Counter({root_type: 1})
    # A path that is the prefix of another is a container that ran ops of its own, not a leaf.
    paths = set(leaves)
    return Counter(kind for path, kind in leaves.items()
                   if not any(other.startswith(path + ".") for other in paths))


def _module_type_name(m: nn.Module) -> str:
    if isinstance(m, torch.jit.ScriptModule):
        return getattr(m, "original_name", None) or type(m).__name__
    return type(m).__name__


def layer_counts(module: nn.Module) -> dict[str, int]:
    """Leaf module type -> how many (e.g. {"Linear": 4, "ReLU": 3}), most common first."""
    counts = _exported_stack_counts(module) if _is_exported(module) else None
    if counts is None:
        counts = Counter()
        for name, m in module.named_modules():
            if name.startswith("_guards_fn") or next(m.children(), None) is not None:
                continue
            counts[_module_type_name(m)] += 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _is_exported(module: nn.Module) -> bool:
    # ep.module() returns a GraphModule subclass defined in torch.export._unlift.
    return any(c.__module__.startswith("torch.export") for c in type(module).__mro__)


def model_name(module: nn.Module) -> str:
    if _is_exported(module):
        graph = getattr(module, "graph", None)
        for node in (graph.nodes if graph is not None else ()):
            stack = node.meta.get("nn_module_stack")
            if stack:
                path, kind = list(stack.values())[0]
                if path == "":
                    return _short_type(kind)
        return "ExportedProgram"
    return _module_type_name(module)


def applicability(module: nn.Module) -> dict[str, Optional[str]]:
    """Technique name -> None when it applies, else the reason it does not."""
    from ..techniques import all_techniques
    result: dict[str, Optional[str]] = {}
    for name, tech in all_techniques().items():
        try:
            reason = tech.applies_to(module)
            result[name] = None if reason is None else str(reason)
        except Exception as exc:  # a check that crashes must not stop the model from opening
            result[name] = f"check failed: {type(exc).__name__}: {exc}".splitlines()[0]
    return result


def model_info(module: nn.Module, source: str, format: str, example: Optional[Inputs],
               name: Optional[str] = None, notes: Optional[list[str]] = None) -> ModelInfo:
    notes = list(notes or [])
    try:
        applies = applicability(module)
    except Exception as exc:  # the registry itself failed to import: report it, still open
        applies = {}
        notes.append(f"technique checks unavailable: {type(exc).__name__}: {exc}")
    return ModelInfo(source=str(source), format=format, name=name or model_name(module),
                     parameters=parameter_count(module), size_bytes=serialized_size(module),
                     layer_counts=layer_counts(module),
                     example_input=example.describe() if example is not None else None,
                     applicability=applies, notes=notes, module_names=module_names(module))


#: A model with more submodules than this lists none (the skip check then happens when the step
#: runs); real models have a few thousand at most.
MAX_MODULE_NAMES = 20_000


def module_names(module) -> list[str]:
    """The qualified names skip patterns match; empty for a graph without module structure."""
    from ..techniques._engines import is_exported
    if not isinstance(module, nn.Module) or isinstance(module, torch.jit.ScriptModule) \
            or is_exported(module):
        return []
    names = [n for n, _ in module.named_modules() if n]
    return names if len(names) <= MAX_MODULE_NAMES else []
