"""What the GUI needs to know about the fashion-cnn example without importing torch: its name,
the environment variable naming the folder of the user's Fashion-MNIST files, how to get them,
and whether a folder holds them (examples/fashion.py trains the model, in the engine)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from .files import find_idx

NAME = "fashion-cnn"
ENV = "QUANTGUI_FASHION_MNIST"
DESCRIPTION = "Small CNN for Fashion-MNIST (28x28 clothes, 10 classes; needs its IDX files)"
FILES = ("the Fashion-MNIST files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
         "t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) from "
         "https://github.com/zalandoresearch/fashion-mnist (or torchvision's FashionMNIST/raw "
         "folder)")
HOW_TO_GET = (f"example:{NAME} needs {FILES}; give their folder with --fashion-mnist DIR or "
              f"{ENV}=DIR")
HOW_TO_GET_GUI = (f"The {NAME} example trains a small CNN on Fashion-MNIST, which does not "
                  f"ship with QuantGUI. Download {FILES}, then choose the folder holding them.")


def folder() -> Optional[Path]:
    value = os.environ.get(ENV)
    return Path(value).expanduser() if value else None


def available(where: "Optional[str | Path]" = None) -> bool:
    """Whether `where` (default: the folder ENV names) holds the training and test IDX files."""
    where = folder() if where is None else Path(where).expanduser()
    pairs = find_idx(where) if where is not None and where.is_dir() else None
    return bool(pairs and "train" in pairs and "test" in pairs)
