"""The sentence-embedding check: for pairs of sentences with similarity scores, the Spearman
correlation between the scores and the cosine similarity of the two sentences' embeddings
(mean-pooled over the real tokens), for the original and the optimized model. A drop says the
optimized embeddings rank pairs differently, which fidelity numbers alone do not show."""

from __future__ import annotations

from typing import Any, Optional

import torch

from ..model.inputs import Inputs, primary_output
from ..model.variant import Variant
from ..progress import Task
from ..results import Similarity
from .paired import similarity


def _embed(variant: Variant, inputs: Inputs) -> torch.Tensor:
    out = primary_output(variant(inputs)).detach().double()
    if out.dim() == 3:  # per-token states: the mean over the real tokens
        mask = inputs.kwargs.get("attention_mask")
        mask = (mask if mask is not None else torch.ones(out.shape[:2])).double().unsqueeze(-1)
        out = (out * mask).sum(1) / mask.sum(1).clamp_min(1)
    return out.reshape(out.shape[0], -1)


def _cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.cosine_similarity(a, b, dim=1)


def similarity_check(before: Variant, after: Variant, data: Any, batch_size: int,
                     limit: Optional[int], task: Task) -> Similarity:
    reader = data.reader
    cos_b, cos_a, scores = [], [], []
    total = data.num_batches(batch_size, limit)
    for i, start in enumerate(range(0, len(data), batch_size)):
        if limit is not None and i >= limit:
            break
        task.check()
        ids = [int(n) for n in data.index[start:start + batch_size]]
        first, _ = reader.read(ids)
        second = reader.read_pairs(ids)
        cos_b.append(_cosine(_embed(before, first), _embed(before, second)))
        cos_a.append(_cosine(_embed(after, first), _embed(after, second)))
        scores.append(data.scores[start:start + batch_size])
        task.report("evaluate", i + 1, total, "similarity of sentence pairs")
    return similarity(torch.cat(scores).numpy(), torch.cat(cos_b).numpy(),
                      torch.cat(cos_a).numpy())
