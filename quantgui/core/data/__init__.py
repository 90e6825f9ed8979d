"""The user's data: a torch-free reference (`DataSpec`, spec.py) and one module per source
(images, idx, table, text, code, tensors), opened by `open_data` (open.py) into `Dataset`s
(dataset.py) that decode batch by batch. Names resolve on first use, so `DataSpec` never
imports torch."""

from __future__ import annotations

import importlib
from typing import Any

_API = {"DataSpec": "spec", "Preprocess": "spec", "detect_kind": "spec", "KINDS": "spec",
        "kind_title": "spec", "Dataset": "dataset", "Reader": "dataset",
        "check_inputs": "dataset", "nonfinite_reason": "dataset", "load_data_file": "tensors",
        "open_data": "open", "OpenedData": "open"}

__all__ = sorted(_API)


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(name)
    return getattr(importlib.import_module(f".{_API[name]}", __name__), name)
