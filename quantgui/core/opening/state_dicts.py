"""Matching a state_dict to the model built from its architecture: the 'module.' prefix of
DataParallel weights, and a strict load whose refusal names the keys and shapes that differ."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from ..errors import UserError
from ..safeload import short_reason as _reason
from .example_input import _few


def strip_prefix(state: Mapping, model: nn.Module) -> tuple[dict, Optional[str]]:
    """Weights saved from DataParallel / DDP carry a 'module.' prefix the bare model lacks."""
    state = dict(state)
    expected = model.state_dict()
    if (state and all(k.startswith("module.") for k in state)
            and not any(k.startswith("module.") for k in expected)):
        return {k[len("module."):]: v for k, v in state.items()}, \
            "removed the 'module.' prefix (weights saved from DataParallel)"
    return state, None


def load_strict(model: nn.Module, state: dict, path: Path, arch: str) -> None:
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} in the file vs {tuple(v.shape)} in the model"
              for k, v in expected.items()
              if k in state and isinstance(v, torch.Tensor) and isinstance(state[k], torch.Tensor)
              and state[k].shape != v.shape]
    parts = []
    if missing:
        parts.append(f"missing keys {_few(missing)}")
    if unexpected:
        parts.append(f"unexpected keys {_few(unexpected)}")
    if shapes:
        parts.append(f"shape mismatch {_few(shapes, 2)}")
    if parts:
        raise UserError(f"{path}: the weights do not match {arch}: {'; '.join(parts)}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:
        raise UserError(f"{path}: the weights do not match {arch} ({_reason(exc)})") from None
