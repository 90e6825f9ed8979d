"""A data *reference*: where the user's data is and how it is read (`DataSpec`), torch-free.

It is what recipes and projects store, what the CLI's `--data` and its preprocessing options
build and what the GUI's data chooser edits; `open_data` (open.py) turns it into datasets.
`kind` "auto" is decided from the path (`detect_kind`):

| kind | what |
|---|---|
| image_folder | a folder of class subfolders (the ImageFolder layout): labels and class names |
| image_flat | a folder of images without subfolders: fidelity only |
| idx | MNIST-family `*-images-idx3-ubyte[.gz]` (+ labels), or a folder holding them |
| table | .csv / .parquet: numeric feature columns + an optional label column |
| text | .txt (a sentence a line), or .csv/.jsonl with a text column, for Hugging Face models |
| code | `file.py:factory` / `package.module:factory` returning a torch Dataset (runs code) |
| tensors | .npz / .pt holding `inputs` (and `labels`) |
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
import math
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError

KINDS = ("image_folder", "image_flat", "idx", "table", "text", "code", "tensors")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                  ".pgm")
NORMALIZE_PRESETS = {"imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}
ON_BAD_IMAGE = ("skip", "stop")
#: Sentences are cut to this many tokens unless the user says otherwise.
DEFAULT_MAX_LENGTH = 128


@dataclass
class Preprocess:
    """Image preprocessing, in torchvision's order: Resize, CenterCrop, Grayscale, ToTensor
    (scaled to [0, 1]), Normalize. Sizes are [height, width]; a single number for `resize`
    is the shorter side (the aspect kept), as torchvision's Resize(int)."""

    resize: Optional[list[int]] = None
    crop: Optional[list[int]] = None
    grayscale: bool = False
    #: None, "imagenet", "data" (mean/std measured on the data) or "M1,M2,M3/S1,S2,S3".
    normalize: Optional[str] = None
    channels: str = "rgb"  # or "bgr" (models trained with OpenCV)

    def check(self, where: str = "--data") -> "Preprocess":
        for name in ("resize", "crop"):
            value = getattr(self, name)
            if value is not None and (not 1 <= len(value) <= 2
                                      or any(not isinstance(n, int) or n < 1 or n > 65536
                                             for n in value)):
                raise UserError(f"{where}: {name} must be N or HxW with whole numbers from 1, "
                                f"got {value}")
        if self.channels not in ("rgb", "bgr"):
            raise UserError(f"{where}: channels must be rgb or bgr, got {self.channels}")
        if self.normalize not in (None, "data"):
            mean_std(self.normalize, 1 if self.grayscale else 3, where)
        return self


def parse_size(text: str, flag: str) -> list[int]:
    """'224' -> [224], '224x160' -> [224, 160] (height x width)."""
    try:
        parts = [int(p) for p in str(text).lower().split("x")]
    except ValueError:
        raise UserError(f"{flag}: expected N or HxW (e.g. 224 or 224x160), got {text!r}") from None
    if not 1 <= len(parts) <= 2 or any(n < 1 or n > 65536 for n in parts):
        raise UserError(f"{flag}: expected N or HxW with sizes from 1 to 65536, got {text!r}")
    return parts


def mean_std(text: str, channels: int, where: str = "--normalize"
             ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean and std a normalize setting names ("imagenet" or "M1,M2,M3/S1,S2,S3")."""
    if text in NORMALIZE_PRESETS:
        mean, std = NORMALIZE_PRESETS[text]
        if channels == 1:  # ImageNet's statistics of a grey image: the channels' average
            return (sum(mean) / 3,), (sum(std) / 3,)
        return mean, std
    try:
        m, s = str(text).split("/")
        mean = tuple(float(v) for v in m.split(","))
        std = tuple(float(v) for v in s.split(","))
    except ValueError:
        raise UserError(f"{where}: expected imagenet, data or MEAN/STD such as "
                        f"0.5,0.5,0.5/0.25,0.25,0.25, got {text!r}") from None
    if len(mean) != len(std) or len(mean) not in (1, channels) \
            or not all(math.isfinite(v) for v in mean + std) or min(std) <= 0:
        raise UserError(f"{where}: needs 1 or {channels} finite means and as many positive "
                        f"standard deviations, got {text!r}")
    return mean, std


@dataclass
class DataSpec:
    """Where the data is and how it is read; `to_json`/`from_json` round-trip exactly."""

    path: str
    kind: str = "auto"
    preprocess: Preprocess = field(default_factory=Preprocess)
    label_column: Optional[str] = None
    text_column: Optional[str] = None
    pair_column: Optional[str] = None    # a second sentence (pairs for similarity)
    score_column: Optional[str] = None   # a pair's similarity score (Spearman check)
    max_length: int = DEFAULT_MAX_LENGTH
    max_samples: Optional[int] = None    # a stratified, seeded subset for speed
    #: Part of this source kept for evaluation; the rest calibrates/trains (None: all of it
    #: serves both, or `calib_path` is the calibration source).
    eval_fraction: Optional[float] = None
    calib_path: Optional[str] = None
    seed: int = 0
    on_bad_image: str = "skip"
    #: The same samples may serve calibration and evaluation (the user said so).
    overlap: bool = False

    def check(self) -> "DataSpec":
        where = self.path or "--data"
        if self.kind != "auto" and self.kind not in KINDS:
            raise UserError(f"{where}: unknown data kind '{self.kind}'; known: "
                            f"{', '.join(KINDS)}")
        if self.on_bad_image not in ON_BAD_IMAGE:
            raise UserError(f"--on-bad-image: skip or stop, got {self.on_bad_image!r}")
        if not isinstance(self.max_length, int) or not 1 <= self.max_length <= 65536:
            raise UserError(f"--max-length: a whole number from 1 to 65536, got "
                            f"{self.max_length}")
        if self.max_samples is not None and self.max_samples < 1:
            raise UserError(f"--max-samples: must be at least 1, got {self.max_samples}")
        if self.eval_fraction is not None and not (isinstance(self.eval_fraction, (int, float))
                                                   and 0 < self.eval_fraction < 1):
            raise UserError(f"--eval-fraction: a fraction between 0 and 1, got "
                            f"{self.eval_fraction}")
        if self.eval_fraction is not None and self.calib_path:
            raise UserError("give either --eval-fraction (split one source) or --calib-data "
                            "(a second source), not both")
        self.preprocess.check(where)
        return self

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Any, where: str = "data") -> "DataSpec":
        """The spec `to_json` wrote; a UserError naming `where` for anything else."""
        if isinstance(data, str):
            return cls(data)
        if not isinstance(data, dict) or not isinstance(data.get("path"), str):
            raise UserError(f"{where}: a data reference needs a 'path'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"{where}: unknown data setting '{unknown[0]}'")
        values = dict(data)
        pre = values.pop("preprocess", None) or {}
        if not isinstance(pre, dict) or set(pre) - {f.name for f in fields(Preprocess)}:
            raise UserError(f"{where}: preprocess: expected resize, crop, grayscale, "
                            f"normalize, channels")
        try:
            spec = cls(preprocess=Preprocess(**pre), **values)
        except TypeError as exc:
            raise UserError(f"{where}: {exc}") from None
        _check_types(spec, where)
        return spec.check()

    def describe(self) -> str:
        """'photos/ (image folder, resize 256, crop 224, imagenet)'."""
        parts = [kind_title(self.kind)] if self.kind != "auto" else []
        p = self.preprocess
        for name, value in (("resize", p.resize), ("crop", p.crop)):
            if value:
                parts.append(f"{name} {'x'.join(map(str, value))}")
        if p.grayscale:
            parts.append("grayscale")
        if p.normalize:
            parts.append(f"normalize {p.normalize}")
        if self.max_samples:
            parts.append(f"{self.max_samples:,} samples")
        if self.eval_fraction:
            parts.append(f"{self.eval_fraction:g} for evaluation")
        return self.path + (f" ({', '.join(parts)})" if parts else "")


def _check_types(spec: DataSpec, where: str) -> None:
    texts = ("path", "kind", "label_column", "text_column", "pair_column", "score_column",
             "calib_path", "on_bad_image")
    for name in texts:
        value = getattr(spec, name)
        if value is not None and not isinstance(value, str):
            raise UserError(f"{where}: {name} must be text")
    for name in ("max_length", "max_samples", "seed"):
        value = getattr(spec, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise UserError(f"{where}: {name} must be a whole number")
    p = spec.preprocess
    if p.normalize is not None and not isinstance(p.normalize, str):
        raise UserError(f"{where}: preprocess.normalize must be text")
    for name in ("resize", "crop"):
        value = getattr(p, name)
        if value is not None and not isinstance(value, list):
            raise UserError(f"{where}: preprocess.{name} must be a list like [224, 224]")


TITLES = {"image_folder": "image folder", "image_flat": "images without labels",
          "idx": "IDX files", "table": "table", "text": "text", "code": "Dataset from code",
          "tensors": "tensors"}


def kind_title(kind: str) -> str:
    return TITLES.get(kind, kind)


def is_code_spec(path: str) -> bool:
    """'loader.py:make' or 'pkg.mod:make' (a factory to run), not a file or folder."""
    target, sep, name = path.rpartition(":")
    return bool(sep and target and name.isidentifier()
                and (target.endswith(".py") or all(p.isidentifier() for p in target.split("."))))


def detect_kind(path: str, for_text_model: bool = False) -> str:
    """The kind a path holds (see the module docstring); UserError when none fits."""
    if is_code_spec(path):
        return "code"
    p = Path(path).expanduser()
    name = p.name.lower()
    if p.is_dir():
        from .files import find_idx
        if find_idx(p) is not None:
            return "idx"
        entries = [e for e in p.iterdir() if not e.name.startswith(".")]
        if any(e.is_dir() for e in entries):
            return "image_folder"
        if any(e.suffix.lower() in IMAGE_SUFFIXES for e in entries):
            return "image_flat"
        raise UserError(f"{path}: no images, class subfolders or IDX files in this folder")
    if "idx1-ubyte" in name or "idx3-ubyte" in name:
        return "idx"
    if name.endswith((".npz", ".pt", ".pth")):
        return "tensors"
    if name.endswith((".txt", ".jsonl")):
        return "text"
    if name.endswith((".csv", ".parquet")):
        return "text" if for_text_model else "table"
    raise UserError(f"{path}: not a data format QuantGUI reads (a folder of images, IDX files, "
                    f".csv, .parquet, .txt, .jsonl, .npz, .pt, or file.py:factory)")
