"""The small torch-free types a technique's knowledge hooks exchange with the rest of the engine.

Every technique answers three questions about itself (hooks on `Technique`, see base.py), so the
export, the verdict and recommend never hold per-technique knowledge of their own:

- `script(step: StepRecord) -> ScriptCode | NoScript`: the plain-torch code the standalone
  script runs for one finished step, built from the step's params and its *decisions* (what the
  run chose: engine, API, freezing method...). A `StepRecord` has no notes on purpose: notes are
  words for people, never input to code.
- `why_not_faster(ctx: VerdictContext) -> list[str]`: why this step may not have sped this
  model up on this CPU (the verdict adds the generic reasons: no steps, nothing changed type,
  a noisy timing).
- `recommend_hints(traits: ModelTraits, capabilities) -> list[Hint]`: candidate recipes this
  technique proposes for a model with these layers on this CPU, each with a priority on the
  shared scale below and a one-line reason.

The types live here (not in measure/, export/ or recommend) because techniques may not import
those layers; they call into techniques, not the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

#: Values a decision may hold: what survives a JSON round trip unchanged.
DecisionValue = Union[str, int, float, bool, None, list]


@dataclass(frozen=True)
class StepRecord:
    """One finished step as the script writer sees it: name, params, decisions; no notes."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)
    decisions: dict[str, Any] = field(default_factory=dict)
    #: The run's example batch (calibration batches of a run saved before decisions existed
    #: derive from it).
    batch_size: int = 1

    @classmethod
    def of(cls, step: Any, batch_size: int = 1) -> "StepRecord":
        """From a StepReport, its JSON dict or anything with `name`/`params` (decisions may be
        absent: a result saved before they existed, or a recipe that never ran)."""
        if isinstance(step, Mapping):
            get = step.get
        else:
            def get(key: str, default: Any = None) -> Any:
                return getattr(step, key, default)
        return cls(str(get("name", "") or ""), dict(get("params") or {}),
                   dict(get("decisions") or {}), int(batch_size or 1))

    def param(self, key: str, default: Any = None) -> Any:
        value = self.params.get(key)
        return default if value is None else value

    def decided(self, key: str, default: Any = None) -> Any:
        value = self.decisions.get(key)
        return default if value is None else value


@dataclass(frozen=True)
class ScriptCode:
    """A step's code in the standalone script."""

    body: str                       # indented 4 spaces inside `def step_N(model, call):`
    summary: str                    # one line: what the step does with which choices
    needs_torchao: bool = False
    #: The step calibrates: this many leading training samples go into calibration.pt.
    calibration_samples: int = 0


@dataclass(frozen=True)
class NoScript:
    """This step cannot be written as a standalone script; `reason` says why."""

    reason: str


@dataclass(frozen=True)
class VerdictContext:
    """What a technique may look at to say why its step did not pay off."""

    step: StepRecord
    #: Every step of the recipe, in order (a reason may depend on what else ran).
    step_names: tuple[str, ...]
    module: Any                     # the optimized model's eager module
    original: Any                   # the user's model
    batch_size: int
    capabilities: tuple[str, ...]   # env.cpu_capabilities() of the machine that measured
    compiled: bool                  # the optimized model runs through torch.compile
    #: torchao tensor-subclass weights are in the optimized model (they dispatch op by op).
    subclass_weights: bool = False

    @property
    def fast_formats(self) -> set[str]:
        return fast_formats(self.capabilities)


@dataclass(frozen=True)
class ModelTraits:
    """The layer counts recommend reads off a model (torch-free, so hooks stay simple)."""

    linear: int = 0
    conv: int = 0
    recurrent: int = 0
    attention: int = 0
    hf: bool = False                # a Hugging Face model (attention implementation switchable)

    @property
    def conv_net(self) -> bool:
        return self.conv > 0

    @property
    def transformer(self) -> bool:
        return self.attention > 0 or self.hf

    @property
    def linear_heavy(self) -> bool:
        return self.linear + self.recurrent > 0 and not self.conv_net


# The shared priority scale of hints (lower is tried first). recommend's search is anytime, so
# the likeliest winners come first; each band below belongs to the techniques that propose it.
NATIVE_HALF = 10        # BF16 on a CPU that computes it natively
#: Other runtimes (ONNX Runtime, OpenVINO) on CPUs without VNNI/AMX: pre-packed FP32 GEMMs
#: beat eager INT8 there (issue 11's AVX2 table), so they go before it (15-19).
RUNTIME_FIRST = 15
CONV_WINS = 20          # conv nets: static INT8, channels-last, freeze (20-29)
LINEAR_INT8 = 30        # Linear/LSTM-heavy models: dynamic INT8
TRANSFORMER = 40        # transformer fast path / SDPA, with BF16 or INT8 (40-49)
#: The same runtimes where INT8/BF16 run natively (VNNI/AMX): after those paths (45-49).
RUNTIME_LATER = 45
EMULATED_HALF = 50      # BF16 where it is emulated (worth a measurement, rarely a win; 50-59)
NATIVE_FP16 = 60
PLAIN_STATIC_INT8 = 70  # static INT8 for models that are neither conv nets nor transformers
CALL_MODE = 80          # inference_mode alone
COMPILE = 90            # torch.compile: 10-30 s per candidate, only when asked (90-99)


@dataclass(frozen=True)
class Hint:
    """A candidate recipe a technique proposes: step names in recipe order, or (name, params)
    pairs where the step needs non-default params (e.g. ("onnxruntime", {"quantize": "dynamic"}))."""

    steps: tuple[Any, ...]
    priority: int
    reason: str
    #: Costs a compile per candidate: recommend leaves it out unless asked.
    costly: bool = False


def fast_formats(capabilities: Any) -> set[str]:
    """The half-precision formats this CPU computes natively ("bf16", "fp16"); elsewhere they
    are emulated and slower than FP32."""
    caps = set(capabilities)
    return ({"bf16"} if caps & {"AMX-BF16", "AVX512-BF16"} else set()) | (
        {"fp16"} if caps & {"AMX-FP16", "AVX512-FP16"} else set())
