"""`.npz` / `.pt` data files holding ready-made tensors: `inputs` (and optionally `labels`); the
first dimension is the sample axis. Mismatched lengths, non-integer labels, no samples at all
and NaN/Inf inputs are a UserError naming the file: numbers computed from such data are garbage
(a NaN input once reported 100% accuracy and a cosine of nan)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .. import safeload
from ..errors import UserError
from ..model.inputs import Inputs
from .dataset import Dataset, check_inputs


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
