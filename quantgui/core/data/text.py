"""Text for Hugging Face models: a .txt file (one sentence a line) or a .csv/.jsonl/.parquet
table with a text column (and optionally a label column, or a second-sentence column and a
similarity score column). Tokenized with the model folder's own tokenizer, one batch at a time,
padded to a fixed `max_length` so every batch has one shape.

Labels give accuracy for sequence-classification heads; pairs with scores give the standard
sentence-embedding check: the Spearman correlation between the scores and the cosine
similarity of the two sentences' mean-pooled embeddings, before vs after (measure/similarity)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from .. import safeload
from ..errors import UserError
from ..model.inputs import Inputs
from .dataset import Dataset, Reader
from .table import column, labels_of, read_rows

TEXT_COLUMNS = ("text", "sentence", "sentence1", "premise", "question")
PAIR_COLUMNS = ("text_pair", "sentence2", "hypothesis")
SCORE_COLUMNS = ("score", "similarity")


class TextReader(Reader):
    kind = "text"

    def __init__(self, texts: list[str], tokenizer: Any, max_length: int,
                 accepted: Sequence[str], where: str, pairs: Optional[list[str]] = None) -> None:
        self.texts = texts
        self.pairs = pairs
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.accepted = tuple(accepted)
        self.where = where
        self.skipped = 0

    def __len__(self) -> int:
        return len(self.texts)

    def item(self, id: int) -> str:
        return self.texts[id]

    def encode(self, texts: list[str]) -> Inputs:
        from ..opening.hf import _encode
        inputs = _encode(self.tokenizer, texts, "max_length", self.max_length, self.accepted)
        if inputs is None:
            raise UserError(f"{self.where}: the model's tokenizer could not encode these "
                            f"sentences")
        return inputs

    def read(self, ids: Sequence[int]) -> tuple[Inputs, list[int]]:
        return self.encode([self.texts[i] for i in ids]), list(range(len(ids)))

    def read_pairs(self, ids: Sequence[int]) -> Inputs:
        assert self.pairs is not None
        return self.encode([self.pairs[i] for i in ids])


def _pick(header: list[str], given: Optional[str], defaults: Sequence[str], path: Path,
          flag: str) -> Optional[int]:
    if given:
        return column(path, header, given, flag)
    return next((header.index(c) for c in defaults if c in header), None)


def _texts(values: list[Any], path: Path, name: str, first_line: int) -> list[str]:
    texts = ["" if v is None else str(v).strip() for v in values]
    empty = [i for i, t in enumerate(texts) if not t]
    if len(empty) == len(texts):
        raise UserError(f"{path}: the text column '{name}' is empty")
    if empty:
        raise UserError(f"{path}: the text column '{name}' is empty on line "
                        f"{empty[0] + first_line} ({len(empty):,} empty cell"
                        f"{'' if len(empty) == 1 else 's'})")
    return texts


def open_text(spec: Any, hf_model: Any) -> Dataset:
    """Sentences (+ labels / pairs and scores) of `spec` for the model folder `hf_model`
    (opening.hf.HFModel)."""
    path = Path(spec.path).expanduser()
    folder = (hf_model.origin.get("path") if hf_model is not None else None)
    if hf_model is None:
        raise UserError(f"{spec.path}: text data needs a Hugging Face model folder (its "
                        f"tokenizer turns the sentences into token ids)")
    if hf_model.tokenizer is None:
        raise UserError(f"{folder}: no usable tokenizer in the model folder "
                        f"(tokenizer.json, vocab.txt, ...), so {path.name} cannot be turned "
                        f"into token ids")
    labels = classes = scores = pairs = None
    if path.suffix.lower() == ".txt":
        safe = safeload.regular_file(path, "data file")
        try:
            lines = safe.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise UserError(f"{path}: not UTF-8 text") from None
        texts = [line.strip() for line in lines if line.strip()]
        if not texts:
            raise UserError(f"{path}: no sentences (every line is empty)")
    else:
        header, rows = read_rows(path)
        if not rows:
            raise UserError(f"{path}: holds no samples (only a header row)")
        at = _pick(header, spec.text_column, TEXT_COLUMNS, path, "--text-column")
        if at is None:
            raise UserError(f"{path}: no text column (name it with --text-column; columns: "
                            f"{', '.join(header[:12])})")
        first = 1 if path.suffix.lower() == ".jsonl" else 2
        texts = _texts([r[at] for r in rows], path, header[at], first)
        pair_at = _pick(header, spec.pair_column, PAIR_COLUMNS, path, "--pair-column")
        if pair_at is not None:
            pairs = _texts([r[pair_at] for r in rows], path, header[pair_at], first)
            score_at = _pick(header, spec.score_column, SCORE_COLUMNS, path, "--score-column")
            if score_at is not None:
                from .table import _number
                scores = torch.tensor([_number(r[score_at], path, i + first, header[score_at])
                                       for i, r in enumerate(rows)], dtype=torch.float64)
        label_at = _pick(header, spec.label_column, ("label",), path, "--label-column")
        if label_at is not None:
            labels, classes = labels_of([r[label_at] for r in rows], path, header[label_at],
                                        first)
    length = min(spec.max_length, _position_limit(hf_model))
    reader = TextReader(texts, hf_model.tokenizer, length, hf_model.accepted, str(path), pairs)
    return Dataset(None, labels, path.name, classes, reader, scores=scores)


def _position_limit(hf_model: Any) -> int:
    config = getattr(hf_model.module, "config", None)
    return getattr(config, "max_position_embeddings", None) or 512
