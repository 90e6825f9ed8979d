"""Labeled (or unlabeled) data for calibration, training and accuracy.

A data file is `.npz` or `.pt` holding `inputs` (and optionally `labels`); the first dimension
is the sample axis. Mismatched lengths or non-integer labels are a UserError.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import torch

from . import safeload
from .errors import UserError
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
    labels = raw.get("labels")
    if labels is not None:
        labels = _as_tensor(labels, "labels", path)
        if labels.is_floating_point() or labels.dim() != 1:
            raise UserError(f"{path}: 'labels' must be a 1-D array of class indices")
        labels = labels.long()
        if len(labels) != len(inputs):
            raise UserError(f"{path}: {len(labels)} labels for {len(inputs)} inputs")
    return Dataset(Inputs.of(inputs), labels, path.name)
