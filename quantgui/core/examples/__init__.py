"""Built-in examples trained on scikit-learn's bundled 8x8 digits (no download).

Their trained weights ship with QuantGUI (`resources/examples/`, installed as
`quantgui.resources`), made by `tools/train_examples.py` with the `train()` below, so the first
window is usable at once. Only when those are missing or stale (an architecture or the training
changed and the script was not rerun) is an example trained here, with progress reported per
batch, and cached as a state_dict in the user cache directory (`QUANTGUI_CACHE`, else
`$XDG_CACHE_HOME/quantgui`, else `~/.cache/quantgui`). The split is fixed: 360 test digits for
accuracy, 1,437 for calibration and quantization-aware training.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import hashlib
import os
from pathlib import Path
import threading
from typing import Callable, Iterator, Optional

import numpy as np
import torch
from torch import nn

from . import models as example_models
from .. import safeload
from ..errors import UserError
from ..model.data import Dataset
from ..model.inputs import Inputs
from ..progress import Task, quiet_task

#: Bump when an architecture or the training changes, so stale caches are retrained; then rerun
#: tools/train_examples.py (a test fails while the shipped weights are of another version).
#: 2: trained on one thread (reproducible), weights shipped.
TRAINING_VERSION = 2
TEST_SIZE = 360
DEFAULT_EXAMPLE = "digits-cnn"
BATCH = 64
MANIFEST = "manifest.json"


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


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Train on one thread: a multi-threaded kernel splits its sums by thread count, so the
    rounding (and now and then a test digit) would depend on the machine's cores. On one thread
    a run reproduces bit for bit on the same CPU kind and torch version."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _train(spec: ExampleSpec, train: Dataset, task: Task, why: str = "") -> nn.Module:
    torch.manual_seed(0)
    what = f"training {spec.name}" + (f" ({why})" if why else "")
    return fit(spec.cls(), train, spec.epochs, spec.lr, BATCH, task, what)


def fit(model: nn.Module, train: Dataset, epochs: int, lr: float, batch_size: int, task: Task,
        what: str) -> nn.Module:
    """Adam + cross-entropy over shuffled batches (seeded: the same model on the same CPU kind
    and torch version), reporting per batch so the bar moves and a cancel is seen."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    x, y = train.inputs.args[0], train.labels
    gen = torch.Generator().manual_seed(0)
    per_epoch = -(-len(x) // batch_size)
    total = epochs * per_epoch
    task.report("load", 0, total, what)
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for batch, start in enumerate(range(0, len(x), batch_size)):
            idx = perm[start:start + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            task.report("load", epoch * per_epoch + batch + 1, total,
                        f"{what}, epoch {epoch + 1}/{epochs}",
                        loss=float(loss.detach()), epoch=epoch + 1)
    return model.eval()


def train(name: str, task: Optional[Task] = None) -> nn.Module:
    """Example `name` trained from scratch exactly as its shipped weights were (fixed seeds and
    split, one thread): what tools/train_examples.py runs."""
    spec = _spec(name)
    train_split, _ = splits(name)
    with _one_thread():
        return _train(spec, train_split, task or quiet_task())


# --- the shipped weights ---------------------------------------------------------------------

def shipped_folder() -> Path:
    """Where the trained weights ship: resources/examples, installed as quantgui.resources."""
    from importlib import resources
    return Path(str(resources.files("quantgui.resources").joinpath("examples")))


def manifest() -> dict:
    """The shipped manifest (what tools/train_examples.py wrote); {} when there is none."""
    path = shipped_folder() / MANIFEST
    if not path.is_file():
        return {}
    data = safeload.read_json(path, "example manifest")
    return data if isinstance(data, dict) else {}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _load_shipped(name: str, model: nn.Module) -> Optional[str]:
    """Load the shipped weights of `name` into `model`: None when done, else why not (said in
    the training progress that follows)."""
    try:
        info = manifest()
    except UserError:
        return "its shipped manifest is unreadable"
    entry = (info.get("examples") or {}).get(name)
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        return "no trained weights shipped for it"
    if info.get("training_version") != TRAINING_VERSION:
        return (f"the shipped weights are of training version {info.get('training_version')}, "
                f"this QuantGUI trains version {TRAINING_VERSION}")
    path = shipped_folder() / Path(entry["file"]).name
    if not path.is_file() or sha256(path) != entry.get("sha256"):
        return "its shipped weights are missing or damaged"
    try:
        model.load_state_dict(safeload.load_weights(path, "shipped example weights"))
    except (UserError, RuntimeError):  # RuntimeError: the architecture changed since
        return "its shipped weights do not fit its architecture"
    return None


def accuracy(model: nn.Module, data: Dataset, batch_size: int = 360) -> float:
    correct = 0
    with torch.no_grad():
        for inputs, labels in data.batches(batch_size):
            correct += int((model(*inputs.args).argmax(-1) == labels).sum())
    return correct / len(data)


def build(name: str, task: Optional[Task] = None) -> tuple[nn.Module, Dataset, Dataset]:
    """The trained example model (eval mode), its train split and its test split: the shipped
    weights, else the cached ones, else trained now (and cached)."""
    spec = _spec(name)
    task = task or quiet_task()
    train, test = splits(name)
    model = spec.cls()
    with _lock:
        why = _load_shipped(name, model)
        if why is None:
            return model.eval(), train, test
        path = _cache_folder(writable=False) / f"{name}-v{TRAINING_VERSION}.pt"
        if path.exists():
            try:
                model.load_state_dict(safeload.load_weights(path, "cached example"))
                return model.eval(), train, test
            except Exception:
                pass  # a corrupt or stale cache is simply retrained
        _cache_folder(writable=True)  # fail now, not after seconds of training
        with _one_thread():
            model = _train(spec, train, task, why)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(model.state_dict(), tmp)
        os.replace(tmp, path)
    return model, train, test


def describe() -> list[dict]:
    """Examples with their real test accuracy (measured here, not read from the manifest)."""
    rows = []
    for name, spec in EXAMPLES.items():
        model, _, test = build(name)
        rows.append({"name": name, "description": spec.description,
                     "parameters": sum(p.numel() for p in model.parameters()),
                     "test_accuracy": accuracy(model, test),
                     "suggested": list(spec.suggested)})
    return rows
