"""The recipes `quantgui --demo` runs: chosen for the CPU it runs on, plus one honest loss.

Two *stories* come from recommend's CPU-aware candidate order (likeliest winners first): the
first candidate that changes the arithmetic (a numeric format such as INT8 or BF16, or a graph
step such as freeze), then the first one that changes it differently. Candidates that only
change the layout or add inference mode ride along but are no story of their own (on a small
CNN, channels-last alone is within noise), and what this CPU is expected to run slower (BF16 or
FP16 without native support, weight-only INT8 dequantizing in every call) is never a story.

One of those expected losses is run too, labelled as such, so the demo shows QuantGUI saying
"not faster" where that is the truth. On AVX512-BF16/AMX: bf16 + channels-last and static INT8
(loss: fp16 without AVX512-FP16, else weight-only INT8); on AVX2 only: static INT8 and
channels-last + freeze (loss: bf16 + channels-last, emulated BF16 is several times slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .. import env
from ..errors import UserError
from ..model.loaded import LoadedModel
from ..recipe import Recipe
from ..recommend import candidate_recipes, fast_formats

NOT_FASTER = "expected: not faster on this CPU"
#: Steps that change the arithmetic; the others (layout, inference mode) ride along.
_STORY_STEPS = frozenset({"static_int8", "dynamic_int8", "qat_int8", "bf16", "fp16", "freeze",
                          "compile", "transformer_fastpath", "prune"})
_DEQUANTIZING = frozenset({"weight_only_int8", "weight_only_int4"})
#: The honest loss: the first of these this CPU is expected to run slower (and that applies).
_LOSSES = (("bf16", "channels_last", "inference_mode"), ("bf16", "inference_mode"),
           ("fp16", "inference_mode"), ("weight_only_int8", "inference_mode"),
           ("weight_only_int4", "inference_mode"))


@dataclass(frozen=True)
class DemoRun:
    recipe: Recipe
    note: str = ""    # NOT_FASTER for the honest loss
    reason: str = ""  # why it is expected to be slower


def slower_here(names: set[str], capabilities: list[str]) -> Optional[str]:
    """Why a recipe with these steps is expected to be slower than FP32 on this CPU, or None."""
    fast = fast_formats(capabilities)
    if "bf16" in names and "bf16" not in fast:
        return "no native BF16 (AVX512-BF16 or AMX): bf16 math is emulated"
    if "fp16" in names and "fp16" not in fast:
        return "no native FP16 (AVX512-FP16 or AMX-FP16): fp16 math is emulated"
    if names & _DEQUANTIZING:
        return "weight-only INT8/INT4 dequantizes the weights in every call"
    return None


def _applicable(loaded: LoadedModel, names: tuple[str, ...]) -> bool:
    if any(loaded.info.applicability.get(n) for n in names):
        return False
    try:
        Recipe.of(*names).validate()
    except UserError:
        return False
    return True


def demo_runs(loaded: LoadedModel, capabilities: Optional[list[str]] = None) -> list[DemoRun]:
    """The demo's runs in the order they run: the expected loss first, the best story last
    (the screenshot ends on its numbers)."""
    caps = env.cpu_capabilities() if capabilities is None else list(capabilities)
    stories: list[DemoRun] = []
    used: set[str] = set()
    for recipe in candidate_recipes(loaded, caps):
        names = {s.name for s in recipe.steps}
        story = names & _STORY_STEPS
        if not story or story & used or slower_here(names, caps):
            continue
        stories.append(DemoRun(recipe))
        used |= story
        if len(stories) == 2:
            break
    loss = next((DemoRun(Recipe.of(*names), NOT_FASTER, slower_here(set(names), caps))
                 for names in _LOSSES
                 if slower_here(set(names), caps) and _applicable(loaded, names)), None)
    return ([loss] if loss else []) + stories[::-1]


def main() -> None:
    """`python -m quantgui.core.examples.demo`: the demo runs of the default example on this
    CPU as JSON lines ({"recipe", "note", "reason"}), for the GUI, whose process has no torch
    (the engine protocol has no method for them yet)."""
    import json

    from . import DEFAULT_EXAMPLE
    from ..opening.loading import open_model
    for run in demo_runs(open_model(f"example:{DEFAULT_EXAMPLE}")):
        print(json.dumps({"recipe": run.recipe.to_json(), "note": run.note,
                          "reason": run.reason}), flush=True)


if __name__ == "__main__":
    main()
