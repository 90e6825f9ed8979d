"""What opening a model gives back: the module, facts about it, and the data that goes with it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from torch import nn

from ..results import ModelInfo
from .data import Dataset
from .inputs import Inputs
from .usercode import ModelCode
from .variant import Variant


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
