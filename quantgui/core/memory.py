"""Refusing an input that cannot fit in memory, before allocating it.

Asked for a 100 GB tensor, torch fails deep in C++ (or the kernel kills the process), so sizes
known in advance (an `--input-shape`, an example repeated to a large batch) are checked here.
The rule is deliberately simple: running a model needs its input plus, at the very least, a few
activations of the same size (most layers produce outputs as large as their inputs, and the
timer keeps a prepared copy per side), so an input is refused when `ACTIVATION_FACTOR` times its
bytes exceed the memory available. It is a floor, not a prediction: a model whose layers widen
(an embedding, a wide hidden layer) needs more and may still run out.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from . import safeload
from .errors import UserError
from .units import human_bytes

#: Bytes a model run needs per byte of input, at least (the input, its activations, a copy).
ACTIVATION_FACTOR = 4


def tensor_bytes(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> int:
    """Bytes of a tensor of this shape; Python integers, so 10**12 x 10**12 cannot overflow."""
    itemsize = torch.empty((), dtype=dtype).element_size()
    return math.prod(int(d) for d in shape) * itemsize


def _size(n: int) -> str:
    return human_bytes(n) if n < 1e12 else f"{n / 1e9:,.0f} GB"


def check_fits(input_bytes: int, what: str) -> None:
    """UserError naming `what` unless an input of `input_bytes` can be run in this memory."""
    need = input_bytes * ACTIVATION_FACTOR
    available = safeload.available_memory()
    if need > available:
        raise UserError(f"{what}: needs about {_size(need)} of memory, {_size(available)} "
                        f"available (the input alone is {_size(input_bytes)}; running a model "
                        f"on it takes several times that)")
