"""What every technique module provides.

A technique is one module holding a `Params` dataclass (fields made with `params.param`), and a
`Technique` subclass instance registered in `techniques/__init__.py`:

- `applies_to(model)` returns None, or a one-line reason it does not apply to that model;
- `apply(variant, params, ctx)` returns the optimized `Variant`. The runner hands each step a
  variant it owns (a copy of the original), so a step may modify that module in place, but never
  anything reachable from `ctx.original`.

Steps write what happened into `ctx.note(...)`: which backend/engine ran and why, deprecations,
what was skipped. Those notes reach the CLI table, the GUI and the report. What a step *chose*
(engine, API, freezing method, fast path taken, compiled or not) it also records as a structured
decision, `ctx.decide("engine", "fbgemm")`: decisions end up on the StepReport (and its JSON),
and they are what code reads (the standalone script, the verdict); notes are for people.

Each technique also owns its knowledge about itself, as three hooks (types in hooks.py):
`script(step)` (its standalone-script form), `why_not_faster(ctx)` (why it may not have paid
off) and `recommend_hints(traits, capabilities)` (candidate recipes it proposes). Every
registered technique overrides all three (tests/test_technique_hooks.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Optional, Sequence, Union

from torch import nn

from ..model.data import Dataset
from ..model.inputs import Inputs
from ..model.variant import Variant
from ..progress import Task
from .hooks import Hint, ModelTraits, NoScript, ScriptCode, StepRecord, VerdictContext

_DECISION_TYPES = (str, int, float, bool, type(None))


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
    #: What the step chose, as data: {"api": "torch.ao", "engine": "fbgemm", ...}.
    decisions: dict[str, Any] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def decide(self, key: str, value: Any) -> None:
        """Record a choice. Values are JSON scalars or lists of them (they are saved as JSON and
        read back by the script writer, so anything else would not round-trip)."""
        if isinstance(value, tuple):
            value = list(value)
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(v, _DECISION_TYPES) for v in items):
            raise TypeError(f"decision {key!r}: {value!r} is not a JSON scalar or list of them")
        self.decisions[key] = value


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
    #: Replaces layers with quantized ones: if no layer changed type, the step did nothing
    #: (the verdict says so).
    quantizes: ClassVar[bool] = False
    #: Runs the model in another engine (ONNX Runtime, OpenVINO): PyTorch's call-mode steps
    #: after it (inference_mode) change nothing, so the tune does not add them.
    outside_torch: ClassVar[bool] = False

    def applies_to(self, model: nn.Module) -> Optional[str]:
        return None

    def apply(self, variant: Variant, params: Any, ctx: StepContext) -> Variant:
        raise NotImplementedError

    # --- what the technique knows about itself ---------------------------------------------
    # Every registered technique overrides all three (tests/test_technique_hooks.py); these
    # defaults only keep a technique defined elsewhere (a test's, a plugin's) from breaking the
    # verdict, recommend or the script writer.

    def script(self, step: StepRecord) -> Union[ScriptCode, NoScript]:
        """The code the standalone script runs for this finished step, from its params and
        decisions (never its notes)."""
        return NoScript(f"'{self.name}' has no script template yet; QuantGUI ran it, but this "
                        f"script cannot repeat it")

    def why_not_faster(self, ctx: VerdictContext) -> list[str]:
        """Reasons this step may not have sped this model up on this CPU (empty: none known)."""
        return []

    def recommend_hints(self, traits: ModelTraits, capabilities: Sequence[str]) -> list[Hint]:
        """Candidate recipes this technique proposes for a model with these layers on this CPU
        (recommend checks applicability and labels; empty: it proposes none)."""
        return []

    def default_params(self) -> Any:
        return self.Params()

    def __repr__(self) -> str:
        return f"<technique {self.name}>"
