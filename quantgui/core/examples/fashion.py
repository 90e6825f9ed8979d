"""The `fashion-cnn` example: the seed's beginner walkthrough, a small CNN on Fashion-MNIST.

Fashion-MNIST does not ship with QuantGUI (30 MB, and it must not be downloaded behind the
user's back): the user gives the folder holding its IDX files (`--fashion-mnist DIR`, the
QUANTGUI_FASHION_MNIST environment variable, or the GUI's Examples menu), as downloaded from
https://github.com/zalandoresearch/fashion-mnist or by torchvision (`FashionMNIST/raw/`). The
model is trained once like the digits examples (fixed seed, one thread, per-batch progress and
cancel) and cached by the files' identity; t10k evaluates, the training files calibrate/train.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from .. import safeload
from ..data.dataset import Dataset
from ..data.files import find_idx
from ..data.idx import read_idx
from ..errors import UserError
from ..model.inputs import Inputs
from ..progress import Task, quiet_task
from . import _cache_folder, _one_thread, fit
from .models import FashionCNN

from ..data.fashion import (DESCRIPTION, ENV, FILES, HOW_TO_GET, HOW_TO_GET_GUI,  # noqa: F401
                            NAME, available, folder)

EPOCHS = 2
LR = 2e-3
BATCH = 128
TRAINING_VERSION = 1


def _split(images: Path, labels: Optional[Path], name: str) -> Dataset:
    if labels is None:
        raise UserError(f"{images}: no labels file beside it (*-labels-idx1-ubyte)")
    x = torch.from_numpy(read_idx(images, 3).copy()).float().div_(255.0).unsqueeze(1)
    y = torch.from_numpy(read_idx(labels, 1).astype("int64"))
    if len(y) != len(x):
        raise UserError(f"{labels}: {len(y):,} labels for {len(x):,} images")
    if x.shape[2:] != (28, 28):
        raise UserError(f"{images}: images are {x.shape[2]}x{x.shape[3]}, Fashion-MNIST's "
                        f"are 28x28")
    if len(y) and int(y.max()) > 9:
        raise UserError(f"{labels}: label {int(y.max())}; Fashion-MNIST has 10 classes")
    from ..data.idx import FASHION_CLASSES
    return Dataset(Inputs.of(x), y, name, list(FASHION_CLASSES))


def splits() -> tuple[Dataset, Dataset]:
    where = folder()
    if where is None or not where.is_dir():
        raise UserError(HOW_TO_GET)
    pairs = find_idx(where) or {}
    if "train" not in pairs or "test" not in pairs:
        raise UserError(f"{where}: no Fashion-MNIST training and t10k IDX files here; "
                        f"{HOW_TO_GET}")
    return (_split(*pairs["train"], "Fashion-MNIST train"),
            _split(*pairs["test"], "Fashion-MNIST t10k"))


def _key() -> str:
    """The files' identity (paths, sizes, modification times): new files train anew."""
    pairs = find_idx(folder()) or {}
    parts = []
    for images, labels in sorted(pairs.values()):
        for p in (images, labels):
            if p is not None:
                st = p.stat()
                parts.append(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def train(data: Dataset, task: Task) -> nn.Module:
    torch.manual_seed(0)
    return fit(FashionCNN(), data, EPOCHS, LR, BATCH, task, f"training {NAME}")


def build(task: Optional[Task] = None) -> tuple[nn.Module, Dataset, Dataset]:
    """(model, train split, test split): cached weights for these files, else trained now."""
    task = task or quiet_task()
    train_split, test_split = splits()
    path = _cache_folder(writable=False) / f"{NAME}-v{TRAINING_VERSION}-{_key()}.pt"
    model = FashionCNN()
    if path.exists():
        try:
            model.load_state_dict(safeload.load_weights(path, "cached example"))
            return model.eval(), train_split, test_split
        except Exception:
            pass  # a corrupt cache is trained again
    _cache_folder(writable=True)
    with _one_thread():
        model = train(train_split, task)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    return model, train_split, test_split
