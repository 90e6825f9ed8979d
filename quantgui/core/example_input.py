"""Example inputs from files and shapes, and the short error texts loading shares.

Split from loading.py: reading a user's example-input file (a tensor, tuple or dict of tensors,
or the {"args", "kwargs"} form QuantGUI's exports write beside a saved model) is its own job.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from . import safeload
from .errors import UserError
from .inputs import Inputs


def _few(keys: Sequence[str], n: int = 4) -> str:
    shown = ", ".join(keys[:n])
    return shown + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


def _describe_object(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return f"a dict with keys {_few([str(k) for k in obj])}"
    return f"a {type(obj).__name__}"


def load_example_file(path: str | Path) -> Inputs:
    """A tensor, tuple/list or dict of tensors saved with torch.save (or an .npz of arrays);
    one without samples or holding NaN/Inf is refused (timings and fidelity would be garbage)."""
    from .data import check_inputs
    inputs = _read_example_file(path)
    check_inputs(inputs, path)
    return inputs


def _read_example_file(path: str | Path) -> Inputs:
    what = "example input file"
    path = safeload.regular_file(path, what)
    if path.suffix == ".npz":
        arrays = {k: torch.from_numpy(a) for k, a in safeload.load_npz(path, what).items()}
        value: Any = next(iter(arrays.values())) if len(arrays) == 1 else arrays
    else:
        value = safeload.load_weights(path, what)
    if isinstance(value, Mapping) and set(value) == {"args", "kwargs"}:
        # The {"args": (...), "kwargs": {...}} form QuantGUI's exports write.
        args, kwargs = value["args"], value["kwargs"]
        if isinstance(args, (tuple, list)) and isinstance(kwargs, Mapping) and all(
                isinstance(t, torch.Tensor) for t in (*args, *kwargs.values())):
            return Inputs(tuple(args), dict(kwargs))
    items = (value.values() if isinstance(value, Mapping)
             else value if isinstance(value, (tuple, list)) else [value])
    if not items or not all(isinstance(t, torch.Tensor) for t in items):
        raise UserError(f"{path}: the example input must be a tensor, a tuple or a dict of "
                        f"tensors, not {_describe_object(value)}")
    if isinstance(value, Mapping) and not all(isinstance(k, str) for k in value):
        raise UserError(f"{path}: a dict example input needs string keys (argument names)")
    return Inputs.of(dict(value) if isinstance(value, Mapping) else value)


def parse_shape(input_shape: "str | Sequence[int]") -> tuple[int, ...]:
    """An input shape from the CLI/dialog text ("8,3,224,224", "8x3x224x224", "(8, 3)") or a
    sequence of ints; a UserError says what is wrong."""
    from .params import shown
    parts: Any = input_shape
    if isinstance(input_shape, str):
        parts = [p for p in input_shape.strip().strip("()[]").replace("x", ",").split(",")
                 if p.strip()]
    try:
        shape = tuple(int(d) for d in parts)
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"input shape {shown(input_shape)}: expected whole numbers like "
                        f"8,3,224,224") from None
    if not shape or any(d <= 0 for d in shape):
        raise UserError(f"input shape {shown(input_shape)}: every dimension must be a positive "
                        f"number")
    return shape  # whether it fits in memory is checked where it is made (memory.py)


#: QuantGUI's exports write the run's example batch under this name next to the model, so a
#: saved model reopens without the user having to find an input again.
SIDECAR_EXAMPLE = "example_input.pt"


def _sidecar_example(source: str) -> Optional[Path]:
    path = Path(source)
    candidate = (path if path.is_dir() else path.parent) / SIDECAR_EXAMPLE
    return candidate if candidate.is_file() and candidate != path else None
