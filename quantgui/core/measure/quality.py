"""Accuracy on labeled data and fidelity to the original's outputs.

Fidelity is always measured, labels or not: users without labeled data still need to know
whether the optimized model says the same thing (top-1 agreement, cosine, max error, SQNR).
Statistics are accumulated batch by batch, so large evaluation sets never sit in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
import math
from typing import Iterable, Optional

import torch

from ..errors import UserError
from ..model.inputs import Inputs
from ..model.usercode import ModelCodeError
from ..model.variant import Variant
from ..progress import Task, quiet_task
from ..results import Fidelity
from ..run.preflight import label_problem
from ..safeload import short_reason


class FidelityAccumulator:
    """Adds up agreement, cosine, error and signal/noise power batch by batch."""

    def __init__(self) -> None:
        self.agree = 0
        self.positions = 0
        self.cos_sum = 0.0
        self.cos_min = math.inf
        self.samples = 0
        self.max_err = 0.0
        self.signal = 0.0
        self.noise = 0.0
        self.nonfinite = 0

    def add(self, ref: torch.Tensor, out: torch.Tensor,
            mask: Optional[torch.Tensor] = None) -> Optional[float]:
        """Add one batch; returns the running top-1 agreement (None without a class axis).
        `mask` (batch x tokens, `token_mask`): per-token outputs are compared on the real
        tokens only; padded positions are zeroed on both sides."""
        ref, out = ref.detach().double(), out.detach().double()
        if ref.shape != out.shape:
            raise RuntimeError(f"the optimized model returns shape {tuple(out.shape)}, "
                               f"the original {tuple(ref.shape)}")
        self.nonfinite += int((~torch.isfinite(out)).sum())  # padding included: never hidden
        real = None
        if mask is not None and ref.dim() == 3 and tuple(mask.shape) == tuple(ref.shape[:2]):
            real = mask.to(torch.bool)
            zero = torch.zeros((), dtype=ref.dtype)
            ref = torch.where(real.unsqueeze(-1), ref, zero)
            out = torch.where(real.unsqueeze(-1), out, zero)
        if ref.dim() >= 2 and ref.shape[-1] > 1:
            # Argmax over the last axis: the class for logits, the token for per-token outputs.
            same = ref.argmax(-1) == out.argmax(-1)
            self.agree += int((same & real).sum() if real is not None else same.sum())
            self.positions += int(real.sum()) if real is not None else same.numel()
        r = ref.reshape(ref.shape[0], -1) if ref.dim() > 0 else ref.reshape(1, 1)
        o = out.reshape(r.shape)
        rn, on = r.norm(dim=1), o.norm(dim=1)
        cos = (r * o).sum(dim=1) / (rn * on).clamp_min(1e-300)
        # Two all-zero outputs are the same output, not orthogonal ones.
        cos = torch.where((rn == 0) & (on == 0), torch.ones_like(cos), cos)
        self.cos_sum += float(cos.sum())
        self.cos_min = min(self.cos_min, float(cos.min())) if cos.numel() else self.cos_min
        self.samples += cos.numel()
        diff = ref - out
        if diff.numel():
            self.max_err = max(self.max_err, float(diff.abs().max()))
        self.signal += float((ref * ref).sum())
        self.noise += float((diff * diff).sum())
        return self.agree / self.positions if self.positions else None

    def result(self) -> Fidelity:
        if self.noise == 0:
            sqnr = math.inf
        elif self.signal == 0 or not math.isfinite(self.noise):
            sqnr = -math.inf if self.signal == 0 else math.nan
        else:
            sqnr = 10 * math.log10(self.signal / self.noise)
        n = max(self.samples, 1)
        return Fidelity(self.agree / self.positions if self.positions else None,
                        self.cos_sum / n, self.cos_min if self.samples else math.nan,
                        self.max_err, sqnr, self.samples, self.nonfinite)


def token_mask(inputs: Inputs) -> Optional[torch.Tensor]:
    """The attention mask of a tokenized batch (1 = a real token, 0 = padding), or None.
    Text data is padded to a fixed length, so most positions of a short sentence are padding:
    their hidden states are computed but read by nobody (mean pooling and the heads skip them),
    so fidelity leaves them out instead of letting them outweigh the sentence."""
    mask = inputs.kwargs.get("attention_mask")
    return mask if isinstance(mask, torch.Tensor) and mask.dim() == 2 else None


def fidelity(ref: torch.Tensor, out: torch.Tensor) -> Fidelity:
    acc = FidelityAccumulator()
    acc.add(ref, out)
    return acc.result()


class AccuracyCounter:
    def __init__(self, where: str = "data") -> None:
        self.correct = 0
        self.count = 0
        self.where = where

    def check(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """UserError unless `labels` are class indices the output `logits` can score."""
        labeled = len(labels) > 0
        problem = label_problem(self.where, tuple(logits.shape),
                                int(labels.min()) if labeled else None,
                                int(labels.max()) if labeled else None)
        if problem is not None:
            raise UserError(problem.text())

    def add(self, logits: torch.Tensor, labels: torch.Tensor) -> float:
        self.check(logits, labels)
        if logits.shape[0] != len(labels):
            raise UserError(f"{self.where}: {len(labels)} labels for {logits.shape[0]} outputs")
        pred = logits.argmax(-1)
        self.correct += int((pred == labels).sum())
        self.count += len(labels)
        return self.correct / self.count

    @property
    def value(self) -> Optional[float]:
        return self.correct / self.count if self.count else None


@dataclass
class Evaluation:
    before_accuracy: Optional[float]
    after_accuracy: Optional[float]
    fidelity: Fidelity
    samples: int
    #: Per labeled sample, in order: its id in the data source, label, class predicted before
    #: and after (what the paired interval, per-class accuracy and flips are computed from).
    ids: Optional[torch.Tensor] = None
    labels: Optional[torch.Tensor] = None
    pred_before: Optional[torch.Tensor] = None
    pred_after: Optional[torch.Tensor] = None


def evaluate(before: Variant, after: Variant,
             batches: Iterable[tuple[Inputs, Optional[torch.Tensor]]], total: Optional[int] = None,
             where: str = "data", task: Optional[Task] = None) -> Evaluation:
    """One pass over the batches: accuracy of both (when labeled) and fidelity of after to before.
    Batches are (inputs, labels) or (source ids, inputs, labels) (Dataset.indexed_batches)."""
    task = task or quiet_task()
    fid = FidelityAccumulator()
    acc_b, acc_a = AccuracyCounter(where), AccuracyCounter(where)
    labeled = False
    kept: dict[str, list] = {"ids": [], "labels": [], "before": [], "after": []}
    seen = 0
    for i, batch in enumerate(batches, 1):
        ids, inputs, labels = batch if len(batch) == 3 else (None, *batch)
        task.check()
        try:
            ref = before(inputs)
        except ModelCodeError as exc:
            if not exc.new_input:  # it ran on such inputs before: the model's own failure
                raise
            cause = exc.__cause__ or exc
            raise UserError(f"{where}: the original model cannot run on these inputs "
                            f"({type(cause).__name__}: {short_reason(cause)})") from exc
        except (RuntimeError, TypeError, ValueError, IndexError) as exc:
            # The original is the user's own model, untouched: if it cannot run on these
            # inputs, the inputs do not fit it.
            raise UserError(f"{where}: the original model cannot run on these inputs "
                            f"({type(exc).__name__}: {str(exc).splitlines()[0]})") from exc
        task.check()
        out = after(inputs)
        agreement = fid.add(ref, out, token_mask(inputs))
        a_b = a_a = None
        if labels is not None:
            labeled = True
            a_b, a_a = acc_b.add(ref, labels), acc_a.add(out, labels)
            kept["ids"].append(ids if ids is not None
                               else torch.arange(seen, seen + len(labels)))
            kept["labels"].append(labels)
            kept["before"].append(ref.argmax(-1))
            kept["after"].append(out.argmax(-1))
        seen += inputs.batch_size
        task.report("evaluate", i, total, "evaluating before", which="before", accuracy=a_b,
                    agreement=None)
        task.report("evaluate", i, total, "evaluating after", which="after", accuracy=a_a,
                    agreement=agreement)
    result = fid.result()
    joined = {k: torch.cat(v) if v else None for k, v in kept.items()}
    return Evaluation(acc_b.value if labeled else None, acc_a.value if labeled else None,
                      result, result.samples, joined["ids"], joined["labels"],
                      joined["before"], joined["after"])


def accuracy(variant: Variant, batches: Iterable[tuple[Inputs, torch.Tensor]],
             total: Optional[int] = None, which: str = "after", where: str = "data",
             task: Optional[Task] = None) -> Optional[float]:
    """Top-1 accuracy of one variant, reporting the running value per batch."""
    task = task or quiet_task()
    counter = AccuracyCounter(where)
    for i, (inputs, labels) in enumerate(batches, 1):
        task.check()
        if labels is None:
            return None
        running = counter.add(variant(inputs), labels)
        task.report("evaluate", i, total, f"evaluating {which}", which=which, accuracy=running)
    return counter.value
