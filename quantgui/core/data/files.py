"""The files of a data source, torch-free: image folders listed (the ImageFolder layout) and a
few samples for the GUI's preview strip (file paths with class names, or the first sentences),
without decoding anything."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Optional

from ..errors import UserError
from .spec import IMAGE_SUFFIXES, DataSpec, detect_kind

#: Where IDX files are looked for in a folder the user gives (torchvision's layouts too).
SUBFOLDERS = ("", "raw", "FashionMNIST/raw", "MNIST/raw", "KMNIST/raw")


def _pairs(folder: Path) -> dict[str, tuple[Path, Optional[Path]]]:
    found: dict[str, tuple[Path, Optional[Path]]] = {}
    for images in sorted(folder.glob("*-images-idx3-ubyte*")):
        if not images.name.endswith(("ubyte", "ubyte.gz")):
            continue
        prefix = images.name.split("-images-")[0]
        labels = next((p for p in sorted(folder.glob(f"{prefix}-labels-idx1-ubyte*"))
                       if p.name.endswith(("ubyte", "ubyte.gz"))), None)
        split = "test" if prefix.startswith(("t10k", "test")) else "train"
        found.setdefault(split, (images, labels))
    return found


def find_idx(folder: Path) -> Optional[dict[str, tuple[Path, Optional[Path]]]]:
    """{"train"|"test": (images, labels or None)} in `folder` or its usual subfolders."""
    for sub in SUBFOLDERS:
        where = folder / sub if sub else folder
        if where.is_dir():
            pairs = _pairs(where)
            if pairs:
                return pairs
    return None


def image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def list_folder(folder: Path, labeled: bool) -> tuple[list[Path], Optional[list[int]],
                                                       Optional[list[str]]]:
    """(files, labels, class names): class subfolders in sorted order, or a flat folder."""
    if not labeled:
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.startswith("."))
        if not files:
            raise UserError(f"{folder}: no images in this folder")
        return files, None, None
    classes = sorted(d.name for d in folder.iterdir() if d.is_dir() and not d.name.startswith("."))
    files, labels = [], []
    for label, name in enumerate(classes):
        found = image_files(folder / name)
        if not found:
            raise UserError(f"{folder / name}: empty class folder (no images); remove it or "
                            f"add images — every class needs samples")
        files += found
        labels += [label] * len(found)
    if not classes:
        raise UserError(f"{folder}: no class subfolders")
    return files, labels, classes


def image_preview(spec: DataSpec, count: int = 8) -> list[tuple[str, Optional[str]]]:
    """A few (file, class name) pairs spread over the classes, for the GUI's preview strip;
    reads no pixels."""
    folder = Path(spec.path).expanduser()
    labeled = any(p.is_dir() for p in folder.iterdir())
    files, labels, classes = list_folder(folder, labeled)
    if labels is None:
        return [(str(f), None) for f in files[:count]]
    firsts: dict[int, list[int]] = {}
    for i, label in enumerate(labels):
        firsts.setdefault(label, []).append(i)
    picked: list[int] = []
    while len(picked) < min(count, len(files)):
        for label in sorted(firsts):
            if firsts[label] and len(picked) < count:
                picked.append(firsts[label].pop(0))
    return [(str(files[i]), classes[labels[i]]) for i in picked]


def text_preview(spec: DataSpec, count: int = 5) -> list[tuple[str, Optional[str]]]:
    """The first sentences (with their labels) of a .txt/.csv/.jsonl file."""
    path = Path(spec.path).expanduser()
    out: list[tuple[str, Optional[str]]] = []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        if path.suffix.lower() == ".txt":
            for line in f:
                if line.strip():
                    out.append((line.strip(), None))
                if len(out) >= count:
                    break
            return out
        if path.suffix.lower() == ".jsonl":
            rows = (json.loads(line) for line in f if line.strip())
        else:
            rows = csv.DictReader(f)
        for row in rows:
            if not isinstance(row, dict):
                continue
            text = row.get(spec.text_column or "") or next(
                (row[k] for k in ("text", "sentence", "sentence1") if row.get(k)), None)
            label = row.get(spec.label_column or "label")
            out.append((str(text or ""), None if label is None else str(label)))
            if len(out) >= count:
                break
    return out


def preview(spec: DataSpec, count: int = 8) -> tuple[str, list[tuple[str, Optional[str]]]]:
    """(kind, samples): image files with class names, or sentences with labels; ("", []) for
    kinds without a preview (tables, IDX, code, tensors)."""
    kind = spec.kind if spec.kind != "auto" else detect_kind(spec.path, True)
    if kind in ("image_folder", "image_flat"):
        return kind, image_preview(spec, count)
    if kind == "text":
        return kind, text_preview(spec, min(count, 5))
    return kind, []
