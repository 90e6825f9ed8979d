"""What opening a model gives back: the module, facts about it, and the data that goes with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from torch import nn

from .data import Dataset
from .inputs import Inputs
from .usercode import ModelCode
from .variant import Variant


@dataclass
class ModelInfo:
    source: str                    # what the user opened: "example:digits-cnn", a path
    format: str                    # "example", "torchscript", "exported", "state_dict",
                                   # "pickled", "huggingface"
    name: str                      # class name (or HF model type)
    parameters: int
    size_bytes: int                # serialized size of the model as it would be saved
    layer_counts: dict[str, int]   # leaf module type -> count
    example_input: Optional[str]   # e.g. "(8, 1, 8, 8) float32"; None: the model has none yet
    #: technique name -> None when it applies, else the reason it does not.
    applicability: dict[str, Optional[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "format": self.format, "name": self.name,
                "parameters": self.parameters, "size_bytes": self.size_bytes,
                "layer_counts": dict(self.layer_counts), "example_input": self.example_input,
                "applicability": dict(self.applicability), "notes": list(self.notes)}


@dataclass
class LoadedModel:
    module: nn.Module              # eval mode; never modified by the engine
    info: ModelInfo
    #: Example input (its batch size is the default batch size); None only when opened for
    #: inspection without one (open_model(need_example=False)): such a model cannot be run.
    example: Optional[Inputs]
    test: Optional[Dataset] = None   # evaluation data (labels give accuracy)
    train: Optional[Dataset] = None  # calibration / QAT data
    #: How to rebuild the architecture outside QuantGUI, for exports:
    #: {"arch": "path/file.py:Factory", "kwargs": {...}, "weights": "path"} or None.
    origin: dict[str, Any] = field(default_factory=dict)
    #: The user's other files it was opened with ({"data file": path, "example input": path}):
    #: exports never write over them (export/guard.py).
    user_files: dict[str, str] = field(default_factory=dict)
    #: Whose code the module runs, for errors that name the model (see usercode.py); one per
    #: model, so its calls are counted across loading, checking, timing and evaluating.
    code: Optional[ModelCode] = None

    def __post_init__(self) -> None:
        if self.code is None:
            name = self.info.source if self.info is not None else type(self.module).__name__
            self.code = ModelCode.of(self.module, name)

    def baseline(self) -> Variant:
        """The original as a careful user calls it (eval, no_grad), failures named as its own."""
        return Variant.baseline(self.module, self.code)
