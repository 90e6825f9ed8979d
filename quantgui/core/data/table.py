"""Tables: .csv (and .parquet when pyarrow is installed), one sample a row. Every column but the
label column is a numeric feature; the label column is picked by name (`--label-column`; a
column called "label" is taken when none is named). Reading rows for text models is here too
(text.py turns them into token ids)."""

from __future__ import annotations

import csv
import importlib
import json
import math
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from .. import safeload
from ..errors import UserError
from ..model.inputs import Inputs
from .dataset import Dataset, check_inputs

#: A table larger than this is not a feature table anyone evaluates on a desktop.
MAX_BYTES = 2 * 2**30
csv.field_size_limit(16 * 2**20)


def read_rows(path: str | Path) -> tuple[list[str], list[list[Any]]]:
    """(column names, rows) of a .csv, .jsonl or .parquet file."""
    path = safeload.regular_file(path, "data file")
    if path.stat().st_size > MAX_BYTES:
        raise UserError(f"{path}: larger than {MAX_BYTES // 2**30} GB")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet(path)
    if suffix == ".jsonl":
        return _jsonl(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path}: not a readable CSV file ({type(exc).__name__}: {exc})") \
            from None
    if not rows or not any(rows[0]):
        raise UserError(f"{path}: empty (no header row)")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    for i, row in enumerate(body, 2):
        if len(row) != len(header):
            raise UserError(f"{path}: line {i} has {len(row)} fields, the header {len(header)}")
    return header, body


def _jsonl(path: Path) -> tuple[list[str], list[list[Any]]]:
    header: list[str] = []
    records = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UserError(f"{path}: line {i} is not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise UserError(f"{path}: line {i} is not a JSON object")
            records.append(value)
            header += [k for k in value if k not in header]
    return header, [[r.get(k) for k in header] for r in records]


def _parquet(path: Path) -> tuple[list[str], list[list[Any]]]:
    try:
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise UserError(f"{path}: reading .parquet needs pyarrow, which is not installed "
                        f"(pip install pyarrow), or save the table as .csv") from None
    try:
        table = pq.read_table(str(path))
    except Exception as exc:
        raise UserError(f"{path}: not a readable Parquet file ({type(exc).__name__})") from None
    columns = [table.column(n).to_pylist() for n in table.column_names]
    return list(table.column_names), [list(r) for r in zip(*columns)]


def column(path: Any, header: list[str], name: str, flag: str) -> int:
    if name not in header:
        raise UserError(f"{path}: no column '{name}' ({flag}); columns: "
                        f"{', '.join(header[:12])}{', ...' if len(header) > 12 else ''}")
    return header.index(name)


def _number(value: Any, path: Any, line: int, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UserError(f"{path}: column '{name}' is not numeric (line {line}: "
                        f"{str(value)[:40]!r})") from None
    if not math.isfinite(number):
        raise UserError(f"{path}: column '{name}' holds {value} (line {line}); numbers "
                        f"computed from NaN/Inf are garbage")
    return number


def labels_of(values: list[Any], path: Any, name: str, first_line: int = 2
              ) -> tuple[torch.Tensor, Optional[list[str]]]:
    """Class indices from a label column: whole numbers as they are, or names (sorted -> 0,
    1, ...: the class names are kept)."""
    try:
        numbers = [float(v) for v in values]
        if all(math.isfinite(n) and n == int(n) for n in numbers):
            return torch.tensor([int(n) for n in numbers], dtype=torch.long), None
        bad = next(i for i, n in enumerate(numbers) if not (math.isfinite(n) and n == int(n)))
        raise UserError(f"{path}: label column '{name}' holds {values[bad]} (line "
                        f"{bad + first_line}); labels are class indices or class names")
    except (TypeError, ValueError):
        names = sorted({str(v) for v in values})
        if any(not str(v).strip() for v in values):
            raise UserError(f"{path}: label column '{name}' has empty cells") from None
        lookup = {n: i for i, n in enumerate(names)}
        return torch.tensor([lookup[str(v)] for v in values], dtype=torch.long), names


def open_table(spec: Any) -> Dataset:
    path = Path(spec.path).expanduser()
    header, rows = read_rows(path)
    if not rows:
        raise UserError(f"{path}: holds no samples (only a header row)")
    label_name = spec.label_column or ("label" if "label" in header else None)
    label_at = column(path, header, label_name, "--label-column") if label_name else None
    features = [i for i in range(len(header)) if i != label_at]
    if not features:
        raise UserError(f"{path}: no feature columns besides the label column")
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    for r, row in enumerate(rows):
        for c, i in enumerate(features):
            x[r, c] = _number(row[i], path, r + 2, header[i])
    labels = classes = None
    if label_at is not None:
        labels, classes = labels_of([row[label_at] for row in rows], path, label_name)
    inputs = Inputs.of(torch.from_numpy(x))
    check_inputs(inputs, path)
    return Dataset(inputs, labels, path.name, classes)
