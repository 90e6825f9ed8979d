"""MNIST-family IDX files (MNIST, Fashion-MNIST, KMNIST as downloaded): `*-images-idx3-ubyte`
and `*-labels-idx1-ubyte`, optionally gzipped. The format is a magic number (0, 0, type 0x08 =
unsigned bytes, number of dimensions), the dimensions as big-endian 32-bit counts, then the raw
bytes; all three are checked. A folder holding them is read too, as is torchvision's layout
(`FashionMNIST/raw/...`). The images stay uint8 in memory (60,000 x 28 x 28 is 47 MB) and
become float batches (N x 1 x H x W in [0, 1], then Normalize) one batch at a time."""

from __future__ import annotations

import gzip
from pathlib import Path
import struct
from typing import Optional, Sequence

import numpy as np
import torch

from .. import safeload
from ..errors import UserError
from ..model.inputs import Inputs
from .dataset import Dataset, Reader, nonfinite_reason
from .files import SUBFOLDERS, find_idx
from .spec import DataSpec, mean_std

#: Largest decompressed IDX file accepted (Fashion-MNIST's training images are 47 MB): a
#: gzip that claims more is refused before it is inflated (safeload's zip-bomb rule, here).
MAX_BYTES = 1024 * 2**20
UBYTE = 0x08
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


def _open(path: Path):
    if path.name.endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def read_idx(path: str | Path, dims: int) -> np.ndarray:
    """The array in an IDX file of `dims` dimensions; a UserError naming the file for a wrong
    magic number, dimension count, or a byte count that does not match the dimensions."""
    path = safeload.regular_file(path, "IDX file")
    try:
        with _open(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0:
                raise UserError(f"{path}: not an IDX file (magic number "
                                f"{head.hex() or 'missing'}, expected 0000 08 0{dims})")
            if head[2] != UBYTE:
                raise UserError(f"{path}: IDX data type 0x{head[2]:02x} is not unsigned bytes "
                                f"(0x08)")
            if head[3] != dims:
                raise UserError(f"{path}: {head[3]} dimensions, expected {dims} "
                                f"({'images' if dims == 3 else 'labels'})")
            raw = f.read(4 * dims)
            if len(raw) < 4 * dims:
                raise UserError(f"{path}: truncated header")
            shape = struct.unpack(f">{dims}I", raw)
            expected = int(np.prod(shape, dtype=np.int64))
            if expected > MAX_BYTES:
                raise UserError(f"{path}: claims {expected:,} bytes of data (more than "
                                f"{MAX_BYTES // 2**20} MB); not reading it")
            data = f.read(expected + 1)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise UserError(f"{path}: cannot read ({type(exc).__name__}: {exc})") from None
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "longer than its dimensions"
        raise UserError(f"{path}: {what}: dimensions {' x '.join(map(str, shape))} need "
                        f"{expected:,} bytes of data, found "
                        f"{'more' if len(data) > expected else f'{len(data):,}'}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


class IdxReader(Reader):
    kind = "image"

    def __init__(self, images: np.ndarray, where: str, mean=None, std=None) -> None:
        self.images = images
        self.where = where
        self.mean, self.std = mean, std

    def __len__(self) -> int:
        return len(self.images)

    def item(self, id: int) -> str:
        return f"{self.where}#{id}"

    def pixels(self, id: int) -> np.ndarray:
        return self.images[id]

    def read(self, ids: Sequence[int]) -> tuple[Inputs, list[int]]:
        batch = torch.from_numpy(self.images[list(ids)].astype(np.float32) / 255.0)[:, None]
        if self.mean is not None:
            batch = (batch - self.mean[0]) / self.std[0]
        reason = nonfinite_reason([batch], "values after preprocessing")
        if reason:
            raise UserError(f"{self.where}: {reason}")
        return Inputs((batch,)), list(range(len(ids)))


def _dataset(images: Path, labels: Optional[Path], spec: DataSpec, name: str) -> Dataset:
    pixels = read_idx(images, 3)
    if len(pixels) == 0:
        raise UserError(f"{images}: holds no images")
    y = None
    if labels is not None:
        y = read_idx(labels, 1)
        if len(y) != len(pixels):
            raise UserError(f"{labels}: {len(y):,} labels for {len(pixels):,} images in "
                            f"{images.name}")
        y = torch.from_numpy(y.astype(np.int64))
    mean = std = None
    norm = spec.preprocess.normalize
    if norm == "data":
        sample = pixels[:10_000].astype(np.float64) / 255.0
        mean, std = (float(sample.mean()),), (float(sample.std()),)
        if std[0] <= 1e-6:
            raise UserError(f"{images}: --normalize data: the images have no variation")
    elif norm:
        mean, std = mean_std(norm, 1)
    classes = FASHION_CLASSES if "fashion" in str(images).lower() else None
    if classes is not None and y is not None and int(y.max()) >= len(classes):
        classes = None
    reader = IdxReader(pixels, str(images), mean, std)
    return Dataset(None, y, name, classes, reader)


def open_idx(spec: DataSpec) -> tuple[Dataset, Optional[Dataset]]:
    """(evaluation data, calibration data or None): a folder with both the training and the
    t10k files gives the test files for evaluation and the training files for calibration."""
    path = Path(spec.path).expanduser()
    if path.is_dir():
        pairs = find_idx(path)
        if not pairs:
            raise UserError(f"{spec.path}: no *-images-idx3-ubyte files here or in "
                            f"{', '.join(s for s in SUBFOLDERS if s)}")
        test = pairs.get("test") or pairs["train"]
        train = pairs.get("train") if "test" in pairs else None
        evaluation = _dataset(*test, spec, test[0].name)
        calibration = _dataset(*train, spec, train[0].name) if train else None
        return evaluation, calibration
    if "idx1-ubyte" in path.name:
        raise UserError(f"{spec.path}: a labels file; give the images file "
                        f"(*-images-idx3-ubyte) or the folder holding both")
    prefix = path.name.split("-images-")[0]
    labels = next((p for p in sorted(path.parent.glob(f"{prefix}-labels-idx1-ubyte*"))
                   if p.name.endswith(("ubyte", "ubyte.gz"))), None)
    return _dataset(path, labels, spec, path.name), None
