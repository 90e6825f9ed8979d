"""Which samples calibrate/train and which evaluate, and a smaller subset for speed: stratified
by label (every class keeps its share) and seeded (the same split every time)."""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import UserError
from .dataset import Dataset


def stratified(labels: Optional[torch.Tensor], n: int, count: int, seed: int) -> torch.Tensor:
    """`count` positions of `n`, each class's share kept (largest remainders), in order."""
    gen = torch.Generator().manual_seed(seed)
    if count >= n:
        return torch.arange(n)
    if labels is None:
        return torch.randperm(n, generator=gen)[:count].sort().values
    groups = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    exact = [len(g) * count / n for g in groups]
    take = [int(e) for e in exact]
    order = sorted(range(len(groups)), key=lambda i: exact[i] - take[i], reverse=True)
    for i in order[:count - sum(take)]:
        take[i] += 1
    picked = [g[torch.randperm(len(g), generator=gen)[:k]] for g, k in zip(groups, take)]
    return torch.cat(picked).sort().values


def subsample(data: Dataset, max_samples: Optional[int], seed: int) -> Dataset:
    if max_samples is None or max_samples >= len(data):
        return data
    return data.subset(stratified(data.labels, len(data), max_samples, seed))


def split(data: Dataset, eval_fraction: float, seed: int) -> tuple[Dataset, Dataset]:
    """(evaluation, calibration): disjoint, stratified, seeded."""
    n = len(data)
    count = round(n * eval_fraction)
    if count < 1 or count >= n:
        raise UserError(f"{data.name}: --eval-fraction {eval_fraction:g} of {n:,} samples "
                        f"leaves nothing for {'evaluation' if count < 1 else 'calibration'}")
    test = stratified(data.labels, n, count, seed)
    mask = torch.ones(n, dtype=torch.bool)
    mask[test] = False
    rest = torch.nonzero(mask).flatten()
    return (data.subset(test, f"{data.name} (evaluation {len(test):,})"),
            data.subset(rest, f"{data.name} (calibration {len(rest):,})"))
