"""Image folders: the ImageFolder layout (one subfolder per class, sorted names -> label 0, 1,
...) or a flat folder of images (no labels: fidelity only). Decoded and resized with Pillow,
one batch at a time: opening reads only the headers (sizes, modes), so a 50,000-image folder
never sits in memory decoded.

Preprocessing follows torchvision's transforms, in their order: Resize (bilinear; one number is
the shorter side), CenterCrop, Grayscale, ToTensor (C x H x W scaled to [0, 1]), Normalize.
Without --grayscale the channels are 1 when every image is single-channel, else RGB (or BGR).
"""

from __future__ import annotations

import math
from pathlib import Path
import random
from typing import Optional, Sequence

import numpy as np
import torch

from ..errors import UserError
from ..model.inputs import Inputs
from ..progress import Task, quiet_task
from .dataset import Dataset, Reader, nonfinite_reason
from .files import list_folder
from .spec import DataSpec, Preprocess, mean_std

#: Images whose statistics "normalize: data" is measured on (a seeded sample).
STATS_SAMPLES = 256
#: Headers read between progress reports / cancel checks.
SCAN_CHUNK = 200


def _pil():
    from PIL import Image, ImageFile
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is unreadable, not half-grey
    return Image


class ImageReader(Reader):
    kind = "image"

    def __init__(self, files: Sequence[Path], pre: Preprocess, channels: int,
                 stop_on_bad: bool, where: str) -> None:
        self.files = list(files)
        self.pre = pre
        self.channels = channels
        self.stop_on_bad = stop_on_bad
        self.where = where
        self.skipped = 0
        self.bad: set[int] = set()
        self.mean: Optional[tuple] = None
        self.std: Optional[tuple] = None

    def __len__(self) -> int:
        return len(self.files)

    def item(self, id: int) -> str:
        return str(self.files[id])

    def bad_image(self, id: int, exc: BaseException) -> None:
        if self.stop_on_bad:
            raise UserError(f"{self.files[id]}: cannot read this image ({_reason(exc)}); "
                            f"--on-bad-image skip leaves such images out with a count") from None
        if id not in self.bad:
            self.bad.add(id)
            self.skipped += 1

    def decode(self, id: int) -> Optional[np.ndarray]:
        """One image as float32 C x H x W in [0, 1] (before Normalize), None when unreadable."""
        Image = _pil()
        try:
            with Image.open(self.files[id]) as img:
                img = img.convert("L" if self.channels == 1 else "RGB")
                img = _resize(img, self.pre.resize)
                img = _crop(img, self.pre.crop)
                array = np.asarray(img, dtype=np.float32) / 255.0
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            self.bad_image(id, exc)
            return None
        if array.ndim == 2:
            array = array[None]
        else:
            array = array.transpose(2, 0, 1)
            if self.pre.channels == "bgr":
                array = array[::-1]
        return np.ascontiguousarray(array)

    def read(self, ids: Sequence[int]) -> tuple[Inputs, list[int]]:
        arrays, kept = [], []
        for pos, id in enumerate(ids):
            array = self.decode(id)
            if array is None:
                continue
            if arrays and array.shape != arrays[0].shape:
                raise UserError(f"{self.files[id]}: image size {array.shape[2]}x"
                                f"{array.shape[1]} differs from the others "
                                f"({arrays[0].shape[2]}x{arrays[0].shape[1]}); give --resize "
                                f"(and --crop) so every image has one size")
            arrays.append(array)
            kept.append(pos)
        if not arrays:
            return Inputs((torch.zeros(0),)), []
        batch = torch.from_numpy(np.stack(arrays))
        if self.mean is not None:
            mean = torch.tensor(self.mean).view(-1, 1, 1)
            std = torch.tensor(self.std).view(-1, 1, 1)
            batch = (batch - mean) / std
        reason = nonfinite_reason([batch], "values after preprocessing")
        if reason:
            raise UserError(f"{self.where}: {reason} (check --normalize)")
        return Inputs((batch,)), kept


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _resize(img, size: Optional[list[int]]):
    if not size:
        return img
    if len(size) == 1:  # the shorter side, aspect kept (torchvision's Resize(int))
        w, h = img.size
        short = size[0]
        if w <= h:
            new = (short, max(1, int(short * h / w)))
        else:
            new = (max(1, int(short * w / h)), short)
    else:
        new = (size[1], size[0])
    return img.resize(new, _pil().Resampling.BILINEAR) if new != img.size else img


def _crop(img, size: Optional[list[int]]):
    if not size:
        return img
    th, tw = (size[0], size[0]) if len(size) == 1 else size
    w, h = img.size
    if tw > w or th > h:
        raise ValueError(f"the image ({w}x{h}) is smaller than the crop ({tw}x{th}); "
                         f"resize it first")
    left, top = int(round((w - tw) / 2.0)), int(round((h - th) / 2.0))
    return img.crop((left, top, left + tw, top + th))


def _scan(reader: ImageReader, task: Task) -> tuple[int, set]:
    """Read every header (not the pixels): unreadable files are skipped or stop the load; the
    channel count and the sizes are what the decoder will meet."""
    Image = _pil()
    single, sizes = True, set()
    n = len(reader.files)
    for start in range(0, n, SCAN_CHUNK):
        task.check()
        task.report("load", start, n, "reading image headers")
        for id in range(start, min(n, start + SCAN_CHUNK)):
            try:
                with Image.open(reader.files[id]) as img:
                    single = single and img.mode in ("1", "L", "I", "I;16", "F", "LA")
                    sizes.add(img.size)
            except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
                reader.bad_image(id, exc)
    return (1 if single else 3), sizes


def open_images(spec: DataSpec, labeled: bool, task: Optional[Task] = None) -> Dataset:
    task = task or quiet_task()
    folder = Path(spec.path).expanduser()
    if not folder.is_dir():
        raise UserError(f"{spec.path}: not a folder")
    files, labels, classes = list_folder(folder, labeled)
    pre = spec.preprocess
    reader = ImageReader(files, pre, 3, spec.on_bad_image == "stop", spec.path)
    channels, sizes = _scan(reader, task)
    reader.channels = 1 if pre.grayscale else channels
    if len(reader.bad) == len(files):
        raise UserError(f"{spec.path}: none of the {len(files):,} images could be read")
    if len(sizes) > 1 and not pre.resize and not pre.crop:
        a, b = sorted(sizes)[:2]
        mixed = f"{spec.path}: mixed image sizes ({a[0]}x{a[1]}, {b[0]}x{b[1]}, ...)"
        raise UserError(f"{mixed} and no --resize; give --resize (and --crop) so every image "
                        f"has one size").for_gui(f"{mixed}: choose a resize (and a center crop) "
                                                 f"so every image has one size")
    if pre.normalize == "data":
        reader.mean, reader.std = _data_stats(reader, spec.seed)
    elif pre.normalize:
        reader.mean, reader.std = mean_std(pre.normalize, reader.channels)
        if len(reader.mean) == 1 and reader.channels == 3:
            reader.mean, reader.std = reader.mean * 3, reader.std * 3
    good = [i for i in range(len(files)) if i not in reader.bad]
    index = torch.tensor(good, dtype=torch.long)
    label_tensor = torch.tensor(labels, dtype=torch.long)[index] if labels is not None else None
    return Dataset(None, label_tensor, folder.name or spec.path, classes, reader, index)


def _data_stats(reader: ImageReader, seed: int) -> tuple[tuple, tuple]:
    """Per-channel mean and std over a seeded sample of the images ("normalize: data")."""
    ids = [i for i in range(len(reader)) if i not in reader.bad]
    ids = sorted(random.Random(seed).sample(ids, min(STATS_SAMPLES, len(ids))))
    count = 0
    sums = sqs = None
    for id in ids:
        array = reader.decode(id)
        if array is None:
            continue
        flat = array.reshape(array.shape[0], -1).astype(np.float64)
        sums = flat.sum(1) if sums is None else sums + flat.sum(1)
        sqs = (flat ** 2).sum(1) if sqs is None else sqs + (flat ** 2).sum(1)
        count += flat.shape[1]
    mean = sums / count
    std = np.sqrt(np.maximum(sqs / count - mean ** 2, 0.0))
    if (std <= 1e-6).any() or not all(math.isfinite(v) for v in mean):
        raise UserError(f"{reader.where}: --normalize data: the images have no variation to "
                        f"normalize by (standard deviation 0); use imagenet or MEAN/STD")
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)
