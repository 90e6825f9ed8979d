"""Small generated data for the data-source tests (images written with Pillow, IDX files, CSV
tables, a tiny image classifier as architecture file + state_dict). Nothing is committed."""

from __future__ import annotations

import gzip
from pathlib import Path
import struct

import numpy as np
import torch

NET = '''
import torch
from torch import nn


class Net(nn.Module):
    """Three classes from the mean colour of a 3 x H x W image: class c is where channel c is
    strongest (the weights are set, not trained, so the accuracy is known)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(3) * 4)
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(x.mean((2, 3)))


class Grey(Net):
    """The same classifier on 1-channel images (IDX): the grey level fed to all three."""

    def forward(self, x):
        return self.fc(x.mean((2, 3)).repeat(1, 3))


class Features(Net):
    """The same classifier on 3 feature columns."""

    def forward(self, x):
        return self.fc(x)
'''
CLASSES = ["cat", "dog", "fish"]


def colour_net(folder: Path, cls: str = "Net") -> list[str]:
    """CLI arguments opening the 3-class colour classifier (arch file + state_dict); `cls`
    "Features" takes 3 feature columns instead of an image."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "net.py").write_text(NET)
    namespace: dict = {}
    exec(NET, namespace)
    weights = folder / "net_weights.pt"
    torch.save(namespace["Net"]().state_dict(), weights)
    return [str(weights), "--arch", f"{folder / 'net.py'}:{cls}"]


def image(path: Path, cls: int, size=(16, 16), seed: int = 0, mode: str = "RGB") -> Path:
    """A noisy image whose channel `cls` is brightest (so the colour net gets it right)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    pixels = (rng.random((size[1], size[0], 3)) * 120).astype(np.uint8)
    pixels[..., cls] = 250
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


def image_folder(root: Path, per_class: int = 6, classes=CLASSES, size=(16, 16)) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            image(root / name / f"{name}_{i:03d}.png", c % 3, size, seed=c * 100 + i)
    return root


def write_idx(path: Path, array: np.ndarray, magic_type: int = 0x08) -> Path:
    head = bytes([0, 0, magic_type, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = head + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def idx_set(folder: Path, prefix: str, n: int = 12, gz: bool = True, seed: int = 0
            ) -> tuple[Path, Path]:
    rng = np.random.default_rng(seed)
    images = (rng.random((n, 28, 28)) * 255).astype(np.uint8)
    labels = np.arange(n) % 10
    end = ".gz" if gz else ""
    return (write_idx(folder / f"{prefix}-images-idx3-ubyte{end}", images),
            write_idx(folder / f"{prefix}-labels-idx1-ubyte{end}", labels))


def csv_table(path: Path, rows: int = 12, label: str = "label") -> Path:
    rng = np.random.default_rng(0)
    lines = [f"f0,f1,f2,{label}"]
    for i in range(rows):
        c = i % 3
        x = rng.random(3) * 0.2
        x[c] = 1.0
        lines.append(",".join(f"{v:.3f}" for v in x) + f",{CLASSES[c]}")
    path.write_text("\n".join(lines) + "\n")
    return path
