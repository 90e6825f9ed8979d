"""Built-in examples trained on scikit-learn's bundled 8x8 digits (no download).

Each example trains deterministically in seconds on first use and is cached as a state_dict in
the user cache directory (`QUANTGUI_CACHE`, else `$XDG_CACHE_HOME/quantgui`, else
`~/.cache/quantgui`). The split is fixed: 360 test digits for accuracy, 1,437 for calibration
and quantization-aware training.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from torch import nn

from . import example_models, safeload
from .data import Dataset
from .errors import UserError
from .inputs import Inputs
from .progress import Task, quiet_task

#: Bump when an architecture or the training changes, so stale caches are retrained.
TRAINING_VERSION = 1
TEST_SIZE = 360
DEFAULT_EXAMPLE = "digits-cnn"


@dataclass(frozen=True)
class ExampleSpec:
    name: str
    cls: Callable[[], nn.Module]
    layout: str  # "flat" (N, 64), "image" (N, 1, 8, 8) or "rows" (N, 8, 8)
    epochs: int
    lr: float
    description: str
    suggested: tuple[str, ...]  # techniques this example was built to show


EXAMPLES: dict[str, ExampleSpec] = {s.name: s for s in (
    ExampleSpec("digits-cnn", example_models.DigitsCNN, "image", 8, 2e-3,
                "Conv + BatchNorm classifier of 8x8 digits",
                ("static_int8", "channels_last", "freeze", "qat_int8")),
    ExampleSpec("digits-mlp", example_models.DigitsMLP, "flat", 8, 1e-3,
                "Linear-heavy MLP (64-1024-1024-1024-10)", ("dynamic_int8", "bf16")),
    ExampleSpec("digits-lstm", example_models.DigitsLSTM, "rows", 12, 3e-3,
                "2-layer LSTM reading the 8 rows as a sequence", ("dynamic_int8", "bf16")),
    ExampleSpec("digits-transformer", example_models.DigitsTransformer, "rows", 20, 2e-3,
                "nn.TransformerEncoder over the 8 rows as tokens",
                ("transformer_fastpath", "bf16")),
)}

_lock = threading.Lock()
_digits_cache: Optional[tuple[torch.Tensor, torch.Tensor]] = None


def cache_dir() -> Path:
    root = os.environ.get("QUANTGUI_CACHE")
    if root:
        return Path(root)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "quantgui"


def _cache_folder(writable: bool) -> Path:
    """`cache_dir()`, checked before any training: a UserError naming the setting when it is not
    a folder, or (`writable`) cannot be created or written to."""
    root = cache_dir()
    label = f"QUANTGUI_CACHE={root}" if os.environ.get("QUANTGUI_CACHE") else f"{root}"
    hint = "point QUANTGUI_CACHE at a folder QuantGUI may write to"
    if root.exists() and not root.is_dir():
        raise UserError(f"{label}: not a folder (a file is there); {hint}")
    if not writable:
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"{label}: cannot create the example cache folder "
                        f"({exc.strerror or exc}); {hint}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise UserError(f"{label}: the example cache folder is not writable; {hint}")
    return root


def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    global _digits_cache
    if _digits_cache is None:
        from sklearn.datasets import load_digits
        bunch = load_digits()
        x = torch.tensor(bunch.data, dtype=torch.float32) / 16.0
        y = torch.tensor(bunch.target, dtype=torch.long)
        perm = torch.from_numpy(np.random.default_rng(0).permutation(len(x)))
        _digits_cache = (x[perm], y[perm])
    return _digits_cache


def _shape(x: torch.Tensor, layout: str) -> torch.Tensor:
    if layout == "image":
        return x.reshape(-1, 1, 8, 8)
    if layout == "rows":
        return x.reshape(-1, 8, 8)
    return x


def splits(name: str) -> tuple[Dataset, Dataset]:
    """(train, test) datasets shaped for the example's input layout."""
    spec = _spec(name)
    x, y = _digits()
    x = _shape(x, spec.layout)
    test = Dataset(Inputs.of(x[:TEST_SIZE]), y[:TEST_SIZE], f"{name} test split")
    train = Dataset(Inputs.of(x[TEST_SIZE:]), y[TEST_SIZE:], f"{name} train split")
    return train, test


def _spec(name: str) -> ExampleSpec:
    if name not in EXAMPLES:
        raise UserError(f"example:{name}: no such example; built-in examples are "
                        f"{', '.join(EXAMPLES)}")
    return EXAMPLES[name]


def _train(spec: ExampleSpec, train: Dataset, task: Task) -> nn.Module:
    torch.manual_seed(0)
    model = spec.cls()
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    loss_fn = nn.CrossEntropyLoss()
    x, y = train.inputs.args[0], train.labels
    gen = torch.Generator().manual_seed(0)
    model.train()
    for epoch in range(spec.epochs):
        perm = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), 64):
            idx = perm[start:start + 64]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
        task.report("load", epoch + 1, spec.epochs, f"training {spec.name}",
                    loss=float(loss.detach()), epoch=epoch + 1)
    return model.eval()


def accuracy(model: nn.Module, data: Dataset, batch_size: int = 360) -> float:
    correct = 0
    with torch.no_grad():
        for inputs, labels in data.batches(batch_size):
            correct += int((model(*inputs.args).argmax(-1) == labels).sum())
    return correct / len(data)


def build(name: str, task: Optional[Task] = None) -> tuple[nn.Module, Dataset, Dataset]:
    """The trained example model (eval mode), its train split and its test split."""
    spec = _spec(name)
    task = task or quiet_task()
    path = _cache_folder(writable=False) / f"{name}-v{TRAINING_VERSION}.pt"
    train, test = splits(name)
    model = spec.cls()
    with _lock:
        if path.exists():
            try:
                model.load_state_dict(safeload.load_weights(path, "cached example"))
                return model.eval(), train, test
            except Exception:
                pass  # a corrupt or stale cache is simply retrained
        _cache_folder(writable=True)  # fail now, not after seconds of training
        model = _train(spec, train, task)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model, train, test


def describe() -> list[dict]:
    """Examples with their real test accuracy (trains any not cached yet)."""
    rows = []
    for name, spec in EXAMPLES.items():
        model, _, test = build(name)
        rows.append({"name": name, "description": spec.description,
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "test_accuracy": accuracy(model, test),
                     "suggested": list(spec.suggested)})
    return rows
