"""A torch `Dataset` from the user's code: `file.py:factory` or `package.module:factory`, called
with no arguments, returning a map-style dataset (`__len__`, `__getitem__`) whose items are an
input tensor or an (input, label) pair. Naming the code on the command line (or choosing the
file in the GUI) is the user's decision to run it, as for architecture files; a reference to
code read from a recipe or project file runs only when the user trusts that file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch

from ..errors import TrustRequired, UserError
from ..model.inputs import Inputs
from ..model.usercode import ours
from .dataset import Dataset, Reader, nonfinite_reason


def _factory(spec: str) -> Any:
    from ..opening import arch
    target, _, name = spec.rpartition(":")
    if arch.is_file_spec(target):
        module = arch._import_file(Path(target).expanduser().resolve(), "data file", "--data")
    else:
        try:
            import importlib
            module = importlib.import_module(target)
        except (Exception, SystemExit) as exc:
            if ours(exc):
                raise
            raise UserError(f"{spec}: cannot import module ({arch._what_happened(exc)})") \
                from None
    factory = getattr(module, name, None)
    if not callable(factory):
        raise UserError(f"{spec}: the module defines no function or class '{name}'")
    return factory


class CodeReader(Reader):
    kind = "samples"

    def __init__(self, dataset: Any, spec: str) -> None:
        self.dataset = dataset
        self.spec = spec

    def __len__(self) -> int:
        return len(self.dataset)

    def item(self, id: int) -> str:
        return f"{self.spec}[{id}]"

    def sample(self, id: int) -> tuple[torch.Tensor, Any]:
        try:
            got = self.dataset[id]
        except (Exception, SystemExit) as exc:
            if ours(exc):
                raise
            raise UserError(f"{self.spec}: item {id} failed ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
        x, y = (got[0], got[1]) if isinstance(got, (tuple, list)) and len(got) == 2 \
            else (got, None)
        if not isinstance(x, torch.Tensor):
            raise UserError(f"{self.spec}: item {id} is {type(x).__name__}, not a tensor (or "
                            f"an (input, label) pair)")
        return x, y

    def read(self, ids: Sequence[int]) -> tuple[Inputs, list[int]]:
        xs = [self.sample(i)[0] for i in ids]
        if any(x.shape != xs[0].shape for x in xs):
            raise UserError(f"{self.spec}: items have different shapes ({tuple(xs[0].shape)} "
                            f"and others); every item must have one shape")
        batch = torch.stack(xs)
        if batch.is_floating_point():
            batch = batch.float()
            reason = nonfinite_reason([batch])
            if reason:
                raise UserError(f"{self.spec}: {reason}")
        return Inputs((batch,)), list(range(len(ids)))


def open_code(spec: Any, trusted: bool = True) -> Dataset:
    if not trusted:
        raise TrustRequired(f"{spec.path}: this data reference runs code; it came from a "
                            f"file, so it runs only when you trust that file (--trust)")
    factory = _factory(spec.path)
    try:
        dataset = factory()
        n = len(dataset)
    except (Exception, SystemExit) as exc:
        if ours(exc):
            raise
        raise UserError(f"{spec.path}: building the dataset failed ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if n == 0:
        raise UserError(f"{spec.path}: the dataset holds no samples")
    reader = CodeReader(dataset, spec.path)
    labels = []
    # Labels are read once up front (an item at a time; the inputs stay lazy).
    for i in range(n):
        _, y = reader.sample(i)
        if y is None:
            labels = None
            break
        value = y.item() if isinstance(y, torch.Tensor) and y.numel() == 1 else y
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{spec.path}: item {i}'s label is {value!r}; labels are class "
                            f"indices (whole numbers)")
        labels.append(value)
    tensor = torch.tensor(labels, dtype=torch.long) if labels is not None else None
    return Dataset(None, tensor, spec.path, None, reader)
