"""Labeled (or unlabeled) data for calibration, training and accuracy.

A data file is `.npz` or `.pt` holding `inputs` (and optionally `labels`); the first dimension
is the sample axis. Mismatched lengths, non-integer labels, no samples at all and NaN/Inf
inputs are a UserError naming the file: numbers computed from such data are garbage (a NaN input
once reported 100% accuracy and a cosine of nan).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from .. import safeload
from ..errors import UserError
from .inputs import Inputs


@dataclass
class Dataset:
    inputs: Inputs
    labels: Optional[torch.Tensor] = None
    name: str = "data"

    def __post_init__(self) -> None:
        self.inputs = Inputs.of(self.inputs)
        if self.labels is not None and len(self.labels) != len(self):
            raise UserError(f"{self.name}: {len(self.labels)} labels for {len(self)} inputs")

    def __len__(self) -> int:
        return self.inputs.batch_size

    @property
    def labeled(self) -> bool:
        return self.labels is not None

    def batches(self, batch_size: int, limit: Optional[int] = None
                ) -> Iterator[tuple[Inputs, Optional[torch.Tensor]]]:
        """Consecutive batches (the last may be short); `limit` caps how many."""
        n = len(self)
        count = 0
        for start in range(0, n, batch_size):
            if limit is not None and count >= limit:
                return
            stop = min(n, start + batch_size)
            labels = self.labels[start:stop] if self.labels is not None else None
            yield self.inputs.slice(start, stop), labels
            count += 1

    def num_batches(self, batch_size: int, limit: Optional[int] = None) -> int:
        n = -(-len(self) // batch_size)
        return n if limit is None else min(n, limit)

    def head(self, count: int) -> "Dataset":
        count = min(count, len(self))
        labels = self.labels[:count] if self.labels is not None else None
        return Dataset(self.inputs.slice(0, count), labels, self.name)


def _as_tensor(value, what: str, path: Path) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value
    try:
        return torch.from_numpy(np.asarray(value))
    except Exception:
        raise UserError(f"{path}: '{what}' is not an array") from None


def _count(n: int) -> str:
    return f"{n:,}"


def nonfinite_reason(tensors: "list[torch.Tensor]", what: str = "input values") -> Optional[str]:
    """'640 of 640 input values are NaN' when floating tensors hold NaN/Inf, else None."""
    nan = inf = total = 0
    for t in tensors:
        if not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()):
            continue
        total += t.numel()
        if bool(torch.isfinite(t).all()):  # the common case: one pass, no counting
            continue
        nan += int(torch.isnan(t).sum())
        inf += int(torch.isinf(t).sum())
    if not nan and not inf:
        return None
    kind = "NaN" if not inf else "infinite" if not nan else "NaN or infinite"
    return f"{_count(nan + inf)} of {_count(total)} {what} are {kind}"


def check_inputs(inputs: Inputs, where: str | Path) -> None:
    """UserError naming `where` when the inputs hold no sample or any NaN/Inf value."""
    tensors = inputs.tensors()
    if not tensors:
        raise UserError(f"{where}: holds no input tensors")
    shaped = [t for t in tensors if t.dim() > 0]
    if shaped and any(t.shape[0] == 0 for t in shaped):
        raise UserError(f"{where}: holds no samples (inputs shaped {inputs.describe()})")
    reason = nonfinite_reason(tensors)
    if reason:
        raise UserError(f"{where}: {reason}")


def load_data_file(path: str | Path) -> Dataset:
    what = "data file"
    path = safeload.regular_file(path, what)
    if path.suffix == ".npz":
        raw = safeload.load_npz(path, what)
    elif path.suffix in (".pt", ".pth"):
        raw = safeload.load_weights(path, what)
        if not isinstance(raw, dict):
            raise UserError(f"{path}: expected a dict with 'inputs' and 'labels'")
    else:
        raise UserError(f"{path}: data files must be .npz or .pt")
    if "inputs" not in raw:
        raise UserError(f"{path}: no 'inputs' array (found: {', '.join(raw) or 'nothing'})")
    inputs = _as_tensor(raw["inputs"], "inputs", path)
    if inputs.is_floating_point():
        inputs = inputs.float()
    check_inputs(Inputs.of(inputs), path)
    labels = raw.get("labels")
    if labels is not None:
        labels = _as_tensor(labels, "labels", path)
        if labels.is_floating_point() or labels.dim() != 1:
            raise UserError(f"{path}: 'labels' must be a 1-D array of class indices")
        labels = labels.long()
        if len(labels) != len(inputs):
            raise UserError(f"{path}: {len(labels)} labels for {len(inputs)} inputs")
    return Dataset(Inputs.of(inputs), labels, path.name)
