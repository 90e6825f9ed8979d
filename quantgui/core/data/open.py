"""`open_data(spec)`: the datasets a `DataSpec` names, split into evaluation and calibration.

- one source, `eval_fraction` given: a stratified, seeded, disjoint split;
- `calib_path` given: the second source calibrates/trains, the first evaluates;
- IDX folders with both training and t10k files: t10k evaluates, the training files calibrate;
- images, tables, text and code otherwise: 80% evaluates, 20% calibrates (stratified, seeded);
- with `overlap`, and for .npz/.pt as before: the one source serves both (said in a note).
`max_samples` then takes a stratified subset of the evaluation data (and of the calibration
data). Each source is read lazily where it can be (images, text, code)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

from ..errors import UserError
from ..progress import Task, quiet_task
from .dataset import Dataset
from .spec import DataSpec, detect_kind, kind_title
from .split import split, subsample


#: Sources split into evaluation and calibration unless the user says otherwise (.npz/.pt keep
#: their old meaning: the one set serves both, with a note).
SPLIT_BY_DEFAULT = ("image_folder", "image_flat", "table", "text", "code")
DEFAULT_EVAL_FRACTION = 0.8


@dataclass
class OpenedData:
    test: Dataset
    train: Dataset
    kind: str
    notes: list[str] = field(default_factory=list)


def _one(spec: DataSpec, hf_model: Any, task: Task, trusted_code: bool
         ) -> tuple[Dataset, Optional[Dataset], str]:
    kind = spec.kind if spec.kind != "auto" else detect_kind(spec.path, hf_model is not None)
    _check_preprocess(spec, kind)
    if kind in ("image_folder", "image_flat"):
        from .images import open_images
        return open_images(spec, kind == "image_folder", task), None, kind
    if kind == "idx":
        from .idx import open_idx
        test, train = open_idx(spec)
        return test, train, kind
    if kind == "table":
        from .table import open_table
        return open_table(spec), None, kind
    if kind == "text":
        from .text import open_text
        return open_text(spec, hf_model), None, kind
    if kind == "code":
        from .code import open_code
        return open_code(spec, trusted_code), None, kind
    from .tensors import load_data_file
    return load_data_file(spec.path), None, kind


def _check_preprocess(spec: DataSpec, kind: str) -> None:
    """Image settings on data that is not an image folder would be silently ignored: refused."""
    p = spec.preprocess
    given = [flag for flag, on in (("--resize", p.resize), ("--crop", p.crop),
                                   ("--grayscale", p.grayscale),
                                   ("--channels", p.channels != "rgb")) if on]
    if kind == "idx":
        given = [g for g in given if g != "--grayscale"]  # IDX images are grey already
    elif kind not in ("image_folder", "image_flat") and p.normalize:
        given.append("--normalize")
    if given and kind not in ("image_folder", "image_flat"):
        raise UserError(f"{spec.path}: {given[0]} applies to image folders, not to "
                        f"{kind_title(kind)}")


def open_data(spec: DataSpec | str | Path, hf_model: Any = None, task: Optional[Task] = None,
              trusted_code: bool = True) -> OpenedData:
    """The evaluation and calibration datasets of `spec` (see the module docstring).
    `hf_model`: the opened Hugging Face folder (its tokenizer reads text); `trusted_code`: a
    `code` reference may run (False for one read from a file the user did not trust)."""
    task = task or quiet_task()
    if not isinstance(spec, DataSpec):
        spec = DataSpec(str(spec))
    spec.check()
    test, train, kind = _one(spec, hf_model, task, trusted_code)
    notes: list[str] = []
    if spec.calib_path:
        train, _, _ = _one(replace(spec, path=spec.calib_path, calib_path=None), hf_model, task,
                           trusted_code)
    elif spec.eval_fraction is not None:
        test, train = split(test, spec.eval_fraction, spec.seed)
    elif train is None and not spec.overlap and kind in SPLIT_BY_DEFAULT and len(test) >= 2:
        test, train = split(test, DEFAULT_EVAL_FRACTION, spec.seed)
        notes.append(f"evaluation on {len(test):,} samples, calibration on the other "
                     f"{len(train):,} (a stratified split, seed {spec.seed}; --eval-fraction "
                     f"changes it, --overlap uses every sample for both)")
    elif train is None:
        train = test
        notes.append(f"no separate training split: {test.name} is used both for "
                     f"calibration/QAT and for evaluation"
                     + ("" if spec.overlap else " (--eval-fraction keeps them apart)"))
    if spec.max_samples is not None:
        shared = train is test
        test = subsample(test, spec.max_samples, spec.seed)
        train = test if shared else subsample(train, spec.max_samples, spec.seed)
        notes.append(f"a stratified subset of {len(test):,} samples (seed {spec.seed})")
    if len(test) == 0:
        raise UserError(f"{spec.path}: holds no samples")
    if test.skipped:
        notes.append(f"{test.skipped:,} unreadable images skipped")
    task.report("load", 1, 1, f"data: {kind_title(kind)}, {len(test):,} samples")
    return OpenedData(test, train, kind, notes)
