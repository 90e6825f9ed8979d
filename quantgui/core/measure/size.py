"""Model size two honest ways: bytes as saved, and bytes the weights occupy in memory.

Users complained most about "quantized" files that did not shrink, so both numbers are shown:
a weight-only model can be small on disk yet large in memory, and a PT2E graph can carry its
old FP32 weights along (state_dict 1.25x FP32) until they are stripped.
"""

from __future__ import annotations

import io
from typing import Any, Optional

import torch
from torch import nn


def eager_module(module: Any, tags: Optional[dict] = None) -> Any:
    """The module whose weights are the model: compiled wrappers hide it in `_orig_mod`.

    TorchScript modules are their own artifact (they are saved with `torch.jit.save`), so they
    are returned as they are.
    """
    if isinstance(module, torch.jit.ScriptModule):
        return module
    if tags and tags.get("eager_module") is not None:
        return tags["eager_module"]
    return getattr(module, "_orig_mod", module)


def saved_bytes(module: Any) -> Optional[int]:
    """Bytes of the file a user would save: `torch.jit.save` for TorchScript, else the state_dict.

    None when the object has no state to save (a plain function).
    """
    if hasattr(module, "artifact_bytes"):  # another runtime's file (.onnx, IR, .pt2)
        return module.artifact_bytes()
    buf = io.BytesIO()
    if isinstance(module, torch.jit.ScriptModule):
        torch.jit.save(module, buf)
    elif hasattr(module, "state_dict"):
        torch.save(module.state_dict(), buf)
    else:
        return None
    return len(buf.getvalue())


def _tensor_bytes(t: torch.Tensor, seen: set) -> int:
    # torchao weights are tensor subclasses whose outer dtype is the float dtype they pretend to
    # be; their real storage is the inner tensors (int8 data, scales, zero points).
    flatten = getattr(type(t), "__tensor_flatten__", None)
    if flatten is not None and type(t) not in (torch.Tensor, nn.Parameter):
        try:
            names, _ = t.__tensor_flatten__()
            return sum(_tensor_bytes(getattr(t, n), seen) for n in names)
        except Exception:
            pass  # fall back to the outer view of the tensor
    try:
        # Tied weights appear twice in a state_dict but live once in memory.
        key = (t.data_ptr(), t.numel(), t.dtype)
        if t.data_ptr() != 0:
            if key in seen:
                return 0
            seen.add(key)
    except Exception:
        pass  # some subclasses / quantized tensors have no plain storage pointer
    return t.numel() * t.element_size()


def _value_bytes(value: Any, seen: set) -> int:
    if isinstance(value, torch.Tensor):
        return _tensor_bytes(value, seen)
    # Legacy packed params (torch.ao dynamic/static INT8) come out of state_dict as tuples of
    # an int8 weight tensor and a float bias; other entries may be plain Python values.
    if isinstance(value, (tuple, list)):
        return sum(_value_bytes(v, seen) for v in value)
    if isinstance(value, dict):
        return sum(_value_bytes(v, seen) for v in value.values())
    return 0


def memory_bytes(module: Any) -> Optional[int]:
    """Parameter + buffer bytes in memory, from the state_dict (covers packed INT8 params).

    A frozen TorchScript module keeps its weights as graph constants and has an empty
    state_dict; its saved size is then the closest honest number.
    """
    if not hasattr(module, "state_dict"):
        return None
    seen: set = set()
    total = sum(_value_bytes(v, seen) for v in module.state_dict().values())
    if total == 0 and (isinstance(module, torch.jit.ScriptModule)
                       or hasattr(module, "artifact_bytes")):
        # weights held by another runtime: its artifact's size is the closest honest number
        return saved_bytes(module)
    return total


def leaf_types(module: Any) -> dict[str, int]:
    """Leaf module type name -> count: shows whether any layer was swapped for a quantized one."""
    counts: dict[str, int] = {}
    if not isinstance(module, nn.Module):
        return counts
    for m in module.modules():
        if next(m.children(), None) is None:
            name = f"{type(m).__module__}.{type(m).__qualname__}"
            counts[name] = counts.get(name, 0) + 1
    return counts


def has_tensor_subclass_weights(module: Any) -> bool:
    """True when some weight is a tensor subclass (torchao): eager dispatch per op, slow uncompiled."""
    if not isinstance(module, nn.Module):
        return False
    for t in [*module.parameters(), *module.buffers()]:
        if type(t) not in (torch.Tensor, nn.Parameter) and hasattr(type(t), "__tensor_flatten__"):
            return True
    return False
