"""Input shapes and dtype names as people type them, without torch: the CLI's
--input-shape / --input-dtype and the GUI's dialogs (the GUI process never imports torch)
read them with these; `example_input` turns the names into torch dtypes."""

from __future__ import annotations

from typing import Any, Sequence

from ..errors import UserError
from ..params import shown

#: The dtypes an example input may have (--input-dtype's choices, the dialog's list).
DTYPE_NAMES = ("float32", "float16", "bfloat16", "int64", "int32", "bool")
DTYPE_ALIASES = {"float": "float32", "fp32": "float32", "half": "float16", "fp16": "float16",
                 "bf16": "bfloat16", "long": "int64", "int": "int32"}


def parse_shape(input_shape: "str | Sequence[int]") -> tuple[int, ...]:
    """An input shape from the CLI/dialog text ("8,3,224,224", "8x3x224x224", "(8, 3)") or a
    sequence of ints; a UserError says what is wrong."""
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


def dtype_key(name: Any) -> str:
    """The canonical name of a dtype name or alias ("fp16" -> "float16"; "torch.int64" ->
    "int64"); a UserError lists the choices."""
    key = str(name).strip().lower().replace("torch.", "")
    key = DTYPE_ALIASES.get(key, key)
    if key not in DTYPE_NAMES:
        raise UserError(f"input dtype {shown(name)}: expected one of {', '.join(DTYPE_NAMES)}")
    return key
