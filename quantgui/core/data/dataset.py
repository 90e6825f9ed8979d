"""Labeled (or unlabeled) data for calibration, training and accuracy: `Dataset`, in memory or
decoded batch by batch from a `Reader`; NaN/Inf inputs are refused (`check_inputs`): numbers
computed from such data are garbage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import torch

from ..errors import UserError
from ..model.inputs import Inputs


class Reader:
    """Samples decoded on demand (an image folder, sentences): what a lazy `Dataset` reads.

    `read(ids)` decodes the samples `ids` (positions in the source) into one batch and returns
    it with the positions (into `ids`) it kept: a sample that cannot be decoded is skipped and
    counted in `skipped` (or, when the user asked to stop, a UserError naming its file).
    `item(id)` is what a person sees for a sample (a file path, a sentence)."""

    kind = "samples"
    skipped = 0

    def __len__(self) -> int:  # pragma: no cover - every reader defines it
        raise NotImplementedError

    def read(self, ids: Sequence[int]) -> tuple[Inputs, list[int]]:  # pragma: no cover
        raise NotImplementedError

    def item(self, id: int) -> str:
        return f"sample {id}"


@dataclass
class Dataset:
    """Samples and their labels (optional). In memory (`inputs`), or lazy (`reader` + `index`,
    the reader's positions this dataset holds, in order): a 50,000-image folder is decoded one
    batch at a time, never at once."""

    inputs: Optional[Inputs]
    labels: Optional[torch.Tensor] = None
    name: str = "data"
    classes: Optional[list[str]] = None   # class names, by label index
    reader: Optional[Reader] = None
    index: Optional[torch.Tensor] = None
    #: What each sample is in the source (its position there), for the flipped-samples view.
    ids: Optional[torch.Tensor] = None
    #: Similarity scores of sentence pairs (text data with pairs): the Spearman check.
    scores: Optional[torch.Tensor] = None

    def __post_init__(self) -> None:
        if self.reader is None:
            self.inputs = Inputs.of(self.inputs)
        elif self.index is None:
            self.index = torch.arange(len(self.reader))
        if self.labels is not None and len(self.labels) != len(self):
            raise UserError(f"{self.name}: {len(self.labels)} labels for {len(self)} inputs")

    def __len__(self) -> int:
        return len(self.index) if self.reader is not None else self.inputs.batch_size

    @property
    def labeled(self) -> bool:
        return self.labels is not None

    @property
    def lazy(self) -> bool:
        return self.reader is not None

    @property
    def skipped(self) -> int:
        """Samples that could not be decoded so far (skipped with a count)."""
        return self.reader.skipped if self.reader is not None else 0

    def source_ids(self) -> torch.Tensor:
        if self.reader is not None:
            return self.index
        return self.ids if self.ids is not None else torch.arange(len(self))

    def item(self, id: int) -> Optional[str]:
        return self.reader.item(id) if self.reader is not None else None

    def indexed_batches(self, batch_size: int, limit: Optional[int] = None
                        ) -> Iterator[tuple[torch.Tensor, Inputs, Optional[torch.Tensor]]]:
        """(source ids, inputs, labels) of consecutive batches; samples a reader skipped are
        left out of all three."""
        n = len(self)
        ids_all = self.source_ids()
        count = 0
        for start in range(0, n, batch_size):
            if limit is not None and count >= limit:
                return
            stop = min(n, start + batch_size)
            labels = self.labels[start:stop] if self.labels is not None else None
            ids = ids_all[start:stop]
            if self.reader is None:
                yield ids, self.inputs.slice(start, stop), labels
            else:
                inputs, kept = self.reader.read([int(i) for i in ids])
                if not kept:
                    continue
                if len(kept) < stop - start:
                    keep = torch.tensor(kept, dtype=torch.long)
                    ids = ids[keep]
                    labels = labels[keep] if labels is not None else None
                yield ids, inputs, labels
            count += 1

    def batches(self, batch_size: int, limit: Optional[int] = None
                ) -> Iterator[tuple[Inputs, Optional[torch.Tensor]]]:
        """Consecutive batches (the last may be short); `limit` caps how many."""
        for _, inputs, labels in self.indexed_batches(batch_size, limit):
            yield inputs, labels

    def num_batches(self, batch_size: int, limit: Optional[int] = None) -> int:
        n = -(-len(self) // batch_size)
        return n if limit is None else min(n, limit)

    def head(self, count: int) -> "Dataset":
        """The first `count` samples, in memory (decoded, for a lazy dataset)."""
        count = min(count, len(self))
        if self.reader is None:
            labels = self.labels[:count] if self.labels is not None else None
            return Dataset(self.inputs.slice(0, count), labels, self.name, self.classes,
                           ids=self.source_ids()[:count])
        got_ids, got, got_labels = [], [], []
        for ids, inputs, labels in self.indexed_batches(max(count, 1)):
            got_ids.append(ids)
            got.append(inputs)
            if labels is not None:
                got_labels.append(labels)
            if sum(len(i) for i in got_ids) >= count:
                break
        if not got:
            raise UserError(f"{self.name}: none of the first samples could be read")
        inputs = got[0] if len(got) == 1 else _concat(got)
        n = min(count, inputs.batch_size)
        labels = torch.cat(got_labels)[:n] if got_labels else None
        return Dataset(inputs.slice(0, n), labels, self.name, self.classes,
                       ids=torch.cat(got_ids)[:n])

    def subset(self, positions: torch.Tensor, name: Optional[str] = None) -> "Dataset":
        """The samples at `positions` (of this dataset), in that order."""
        positions = torch.as_tensor(positions, dtype=torch.long)
        labels = self.labels[positions] if self.labels is not None else None
        name = name or self.name
        if self.reader is not None:
            scores = self.scores[positions] if self.scores is not None else None
            return Dataset(None, labels, name, self.classes, self.reader, self.index[positions],
                           scores=scores)
        return Dataset(self.inputs.map(lambda t: t[positions] if t.dim() else t), labels, name,
                       self.classes, ids=self.source_ids()[positions])


def _concat(parts: "list[Inputs]") -> Inputs:
    first = parts[0]
    flat = [p.tensors() for p in parts]
    joined = iter([torch.cat([f[k] for f in flat]) for k in range(len(flat[0]))])
    return first.map(lambda t: next(joined))


def _count(n: int) -> str:
    return f"{n:,}"


def nonfinite_reason(tensors: "list[torch.Tensor]", what: str = "input values") -> Optional[str]:
    """'640 of 640 input values are NaN' when floating tensors hold NaN/Inf, else None."""
    nan = inf = total = 0
    for t in tensors:
        if not isinstance(t, torch.Tensor) or not (t.is_floating_point() or t.is_complex()):
            continue
        total += t.numel()
        if bool(torch.isfinite(t).all()):  # the common case: one pass, no counting
            continue
        nan += int(torch.isnan(t).sum())
        inf += int(torch.isinf(t).sum())
    if not nan and not inf:
        return None
    kind = "NaN" if not inf else "infinite" if not nan else "NaN or infinite"
    return f"{_count(nan + inf)} of {_count(total)} {what} are {kind}"


def check_inputs(inputs: Inputs, where: str | Path) -> None:
    """UserError naming `where` when the inputs hold no sample or any NaN/Inf value."""
    tensors = inputs.tensors()
    if not tensors:
        raise UserError(f"{where}: holds no input tensors")
    shaped = [t for t in tensors if t.dim() > 0]
    if shaped and any(t.shape[0] == 0 for t in shaped):
        raise UserError(f"{where}: holds no samples (inputs shaped {inputs.describe()})")
    reason = nonfinite_reason(tensors)
    if reason:
        raise UserError(f"{where}: {reason}")
