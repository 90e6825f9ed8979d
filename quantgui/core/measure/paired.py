"""The accuracy change on the same samples, and whether the evaluation set can tell it apart from
chance: a paired bootstrap over the samples (both models were scored on each, so the change of
each sample is resampled, not the two accuracies independently). Also accuracy per class and
the samples whose prediction flipped."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from ..results import AccuracyChange, ClassAccuracy, Flip, Similarity
from ..results.accuracy import MAX_FLIPS

RESAMPLES = 10_000


def paired_ci(correct_before: np.ndarray, correct_after: np.ndarray, seed: int = 0,
              resamples: int = RESAMPLES) -> tuple[float, float]:
    """95% percentile interval of mean(after - before) over bootstrap resamples of the samples.
    Each sample's change is -1, 0 or +1, so a resample is fully described by how many of each
    it drew: a multinomial draw (exactly the bootstrap, in O(1) per resample)."""
    diff = correct_after.astype(np.int64) - correct_before.astype(np.int64)
    n = len(diff)
    if n == 0:
        return float("nan"), float("nan")
    p = np.array([(diff == -1).sum(), (diff == 0).sum(), (diff == 1).sum()], dtype=float) / n
    counts = np.random.default_rng(seed).multinomial(n, p, size=resamples)
    means = (counts[:, 2] - counts[:, 0]) / n
    lo, hi = np.percentile(means, [2.5, 97.5])
    return float(lo), float(hi)


def accuracy_change(labels: np.ndarray, before: np.ndarray, after: np.ndarray,
                    ids: np.ndarray, classes: Optional[Sequence[str]] = None,
                    item: Optional[Callable[[int], Optional[str]]] = None,
                    seed: int = 0) -> AccuracyChange:
    """`labels`, predictions `before`/`after` and source `ids` of the same samples, in order."""
    ok_b, ok_a = before == labels, after == labels
    n = len(labels)
    change = float(ok_a.mean() - ok_b.mean()) if n else float("nan")
    per_class = []
    for c in np.unique(labels):
        mask = labels == c
        name = classes[c] if classes is not None and 0 <= c < len(classes) else str(int(c))
        per_class.append(ClassAccuracy(str(name), int(mask.sum()), float(ok_b[mask].mean()),
                                       float(ok_a[mask].mean())))
    flipped = np.nonzero(before != after)[0]
    # The ones that changed correctness first (what the user wants to look at), then the rest.
    order = sorted(flipped, key=lambda i: (ok_b[i] == ok_a[i], i))[:MAX_FLIPS]
    flips = [Flip(int(ids[i]), int(labels[i]), int(before[i]), int(after[i]),
                  item(int(ids[i])) if item is not None else None) for i in order]
    return AccuracyChange(n, change, paired_ci(ok_b, ok_a, seed), per_class, flips,
                          int(len(flipped)), int((~ok_b & ok_a).sum()),
                          int((ok_b & ~ok_a).sum()))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    rx, ry = _ranks(np.asarray(x, float)), _ranks(np.asarray(y, float))
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    # ties share their average rank
    uniq, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def similarity(scores: np.ndarray, cos_before: np.ndarray, cos_after: np.ndarray) -> Similarity:
    return Similarity(len(scores), spearman(scores, cos_before), spearman(scores, cos_after))
