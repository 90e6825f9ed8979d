"""What every technique module provides.

A technique is one module holding a `Params` dataclass (fields made with `params.param`), and a
`Technique` subclass instance registered in `techniques/__init__.py`:

- `applies_to(model)` returns None, or a one-line reason it does not apply to that model;
- `apply(variant, params, ctx)` returns the optimized `Variant`. The runner hands each step a
  variant it owns (a copy of the original), so a step may modify that module in place, but never
  anything reachable from `ctx.original`.

Steps write what happened into `ctx.note(...)`: which backend/engine ran and why, deprecations,
what was skipped. Those notes reach the CLI table, the GUI and the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional

from torch import nn

from ..model.data import Dataset
from ..model.inputs import Inputs
from ..model.variant import Variant
from ..progress import Task


@dataclass
class StepContext:
    example: Inputs                      # example input at the user's batch size
    task: Task                           # report progress / check cancel between units
    batch_size: int
    train: Optional[Dataset] = None      # calibration and QAT data (labels may be absent)
    original: Optional[nn.Module] = None  # read-only reference to the user's model
    notes: list[str] = field(default_factory=list)
    #: Measured numbers a step wants shown (e.g. {"sparsity": 0.5, "compile_s": 12.3}).
    metrics: dict[str, Any] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)


class Technique:
    name: ClassVar[str]
    title: ClassVar[str]
    #: One line: what it does, when it helps (shown under the panel title).
    summary: ClassVar[str]
    Params: ClassVar[type]
    #: Recipes must list steps in non-decreasing stage order (see recipe.py STAGES).
    stage: ClassVar[int]
    #: At most one step per group in a recipe (e.g. all INT8/INT4 quantizations share "quantize").
    group: ClassVar[Optional[str]] = None
    #: Needs a labeled training split (QAT).
    needs_labels: ClassVar[bool] = False

    def applies_to(self, model: nn.Module) -> Optional[str]:
        return None

    def apply(self, variant: Variant, params: Any, ctx: StepContext) -> Variant:
        raise NotImplementedError

    def default_params(self) -> Any:
        return self.Params()

    def __repr__(self) -> str:
        return f"<technique {self.name}>"
