"""Preflight: can this recipe run on this model and its data? Asked before any work, by the CLI
(before timing), the GUI (Run stays disabled, with the reason) and recommend (which candidates
to try) alike, and by the runner itself for library callers.

Torch-free: it needs the technique specs (`results.TechniqueSpec`), the model's `ModelInfo`
(which techniques apply, its output shape) and the data's `DataInfo`s, all of which can cross a
process boundary as JSON. Given a `LoadedModel` it takes them from it.

Problems are structured (`Problem.kind`):

- recipe rules: "unknown" technique, "duplicate" step, bad "params", two steps of one "group",
  steps out of stage "order", a "combination" the runtime cannot take (a numeric-format or
  graph step before a runtime step: `runtime_combination`);
- the model: "not_applicable" (the technique's reason), "needs_labels" (QAT without labeled
  training data);
- the data: "labels_out_of_range" (a label the model's outputs cannot score), "labels_shape"
  (labels, but no one class row per sample), "labels_count" (named classes, e.g. image
  subfolders, not as many as the model's outputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from .. import layer_names
from .. import params as params_mod
from ..errors import UserError
from ..recipe import STAGES, Recipe
from ..results import DataInfo, TechniqueSpec, technique_specs

RECIPE_KINDS = ("unknown", "duplicate", "params", "group", "order", "combination")
MODEL_KINDS = ("not_applicable", "needs_labels")
DATA_KINDS = ("labels_out_of_range", "labels_shape", "labels_count")
KINDS = RECIPE_KINDS + MODEL_KINDS + DATA_KINDS

NEEDS_LABELS = "needs labeled training data (give a data file with 'labels')"

_FROM_MODEL: Any = object()


@dataclass(frozen=True)
class Problem:
    """Why a recipe cannot run: its `kind` (KINDS), the reason, and where: a step (index into
    the recipe's steps, its technique, the parameter) or, for the data, the data's name."""

    kind: str
    message: str
    step: Optional[int] = None
    technique: Optional[str] = None
    param: Optional[str] = None
    where: str = ""

    def location(self, json_paths: bool = False) -> str:
        """'step 2 (prune)', or '$.steps[1] (prune)' for a recipe read from a file."""
        if self.step is None:
            return self.where
        at = f"$.steps[{self.step}]" if json_paths else f"step {self.step + 1}"
        return f"{at} ({self.technique})"

    def text(self, json_paths: bool = False) -> str:
        where = self.location(json_paths)
        return f"{where}: {self.message}" if where else self.message

    def __str__(self) -> str:
        return self.text()

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "step": self.step,
                "technique": self.technique, "param": self.param, "where": self.where,
                "text": self.text()}

    @classmethod
    def from_json(cls, data: dict) -> "Problem":
        def opt(key: str) -> Optional[str]:
            return data.get(key) if isinstance(data.get(key), str) else None
        step = data.get("step")
        return cls(str(data.get("kind", "")), str(data.get("message", "")),
                   step if isinstance(step, int) and not isinstance(step, bool) else None,
                   opt("technique"), opt("param"), opt("where") or "")


def require(problems: Sequence[Problem], json_paths: bool = False) -> None:
    """UserError with the first problem's text, if there is one."""
    if problems:
        raise UserError(problems[0].text(json_paths))


# --- the rules ----------------------------------------------------------------------------------

def recipe_problems(recipe: Recipe, techniques: Mapping[str, TechniqueSpec]) -> list[Problem]:
    """The recipe's own problems, step by step (the first is what `Recipe.validate` raises)."""
    out: list[Problem] = []
    groups: dict[str, str] = {}
    seen: dict[str, int] = {}
    last_stage, last_name = -1, None
    for i, step in enumerate(recipe.steps):
        name = step.name
        spec = techniques.get(name)
        if spec is None:
            out.append(Problem("unknown", f"unknown technique '{name}'; known: "
                                          f"{', '.join(techniques)}", i, name))
            continue
        if name in seen:
            out.append(Problem("duplicate", f"'{name}' is already step {seen[name] + 1}; a "
                                            f"recipe uses each technique once", i, name))
            continue
        seen[name] = i
        out += [Problem("params", reason, i, name, param)
                for param, reason in params_mod.problems(spec.params, step.params)]
        if spec.group:
            if spec.group in groups:
                out.append(Problem("group", f"only one {spec.group} step per recipe; "
                                            f"'{groups[spec.group]}' is already one", i, name))
            else:
                groups[spec.group] = name
        if spec.stage < last_stage:
            out.append(Problem("order", f"must come before '{last_name}' — "
                                        f"{STAGES.get(spec.stage, spec.stage)} goes before "
                                        f"{STAGES.get(last_stage, last_stage)}", i, name))
        else:
            last_stage, last_name = spec.stage, name
    return out + runtime_combination(recipe, techniques)


#: What each numeric format makes of the model, and why a runtime step cannot take it (checked
#: on torch 2.13 / onnxruntime / openvino: torch.ao's packed INT8 modules fail torch.export and
#: the ONNX and OpenVINO converters; ONNX Runtime's CPU provider has no BF16 Gemm; the
#: FP16/BF16 casts and torchao weight-only tensors do export, but the runtime steps take the
#: FP32 eager model and convert it themselves, so the cast would be undone or doubled).
_FORMATS = {
    "dynamic_int8": "eager INT8 modules, which cannot be exported",
    "static_int8": "eager INT8 modules, which cannot be exported",
    "qat_int8": "eager INT8 modules, which cannot be exported",
    "weight_only_int8": "torchao INT8 weight tensors",
    "weight_only_int4": "torchao INT4 weight tensors",
    "bf16": "a BF16 model",
    "fp16": "an FP16 model",
}
#: Each runtime's own way to the same format.
_RUNTIME_OPTION = {
    "onnxruntime": "its own INT8 option (onnxruntime:quantize=dynamic or quantize=static)",
    "openvino": "its own INT8 option (openvino:precision=int8)",
    "aoti": "torch.compile or freeze instead (AOTInductor compiles the FP32 model)",
}


def runtime_combination(recipe: Recipe, techniques: Mapping[str, TechniqueSpec]) -> list[Problem]:
    """A runtime step (ONNX Runtime, OpenVINO, AOTInductor) exports the FP32 eager model and
    converts it itself: a numeric-format or graph step before it makes a model it cannot take.
    One problem per runtime step, naming both steps and what to do instead."""
    out: list[Problem] = []
    before: list[tuple[int, str, Any]] = []
    for i, step in enumerate(recipe.steps):
        spec = techniques.get(step.name)
        if spec is None:
            continue
        if spec.group == "runtime":
            for j, name, other in before:
                graph = other.group == "graph"
                made = _FORMATS.get(name, "a compiled/frozen graph" if graph
                                    else "another numeric format")
                use = ("the runtime's own graph optimizations" if graph else
                       _RUNTIME_OPTION.get(step.name, "the runtime's own options"))
                out.append(Problem("combination", f"'{name}' (step {j + 1}) makes {made}, and "
                                                  f"{step.name} takes the FP32 model: remove "
                                                  f"'{name}' and use {use}", i, step.name))
                break
        elif spec.group in ("numeric format", "graph"):
            before.append((i, step.name, spec))
    return out


def label_problem(where: str, output_shape: Sequence[int], label_min: Optional[int],
                  label_max: Optional[int], named: Optional[int] = None) -> Optional[Problem]:
    """Labels the model's outputs cannot score: no one class row per sample, a label outside
    its classes, or (`named`: the data's count of named classes) another number of classes than
    the model has outputs (measure's accuracy counter asks the same of the real outputs)."""
    shape = tuple(int(n) for n in output_shape)
    if len(shape) != 2:  # per-token or flat outputs: no one class row per label
        return Problem("labels_shape", f"one label per sample, but the model returns outputs "
                                       f"shaped {shape}", where=where)
    classes = shape[-1]
    if named is not None and named != classes:
        return Problem("labels_count", f"{named} classes but the model has {classes} outputs; "
                                       f"labels must match the model's classes", where=where)
    if label_min is None or label_max is None:
        return None
    if label_min < 0 or label_max >= classes:
        bad = label_max if label_max >= classes else label_min
        return Problem("labels_out_of_range", f"label {bad} is out of range for a model with "
                                              f"{classes} outputs", where=where)
    return None


def _applies(model: Any, info: Any, applicability: Optional[Mapping[str, Optional[str]]],
             name: str) -> Optional[str]:
    """The reason `name` does not apply (None: it applies, or nothing is known)."""
    known = applicability if applicability is not None else getattr(info, "applicability", None)
    if known is not None and name in known:
        return known[name]
    module = getattr(model, "module", None)
    if module is None:
        return None
    # A LoadedModel whose info predates this technique (registered later, or a hand-made
    # info): ask the technique itself; the engine (torch) is loaded where a module is.
    from ..techniques import get
    return get(name).applies_to(module)


def _skip_problem(info: Any, skip: Any) -> Optional[str]:
    """Why a step's skip list cannot be honoured on this model: a pattern naming no module (a
    typo is never silently ignored), or a model whose layers have no module names."""
    try:
        patterns = params_mod.check(params_mod.ParamSpec("skip", list, [], ""), skip)
    except params_mod.ParamError:
        return None  # the recipe's own check reports it
    if not patterns:
        return None
    if getattr(info, "format", None) in ("exported", "torchscript"):
        return (f"parameter 'skip': a skip list names modules, and a {info.format} model has "
                f"none (its layers are graph operators); open the eager model to skip layers")
    names = getattr(info, "module_names", None) or []
    missing = layer_names.unmatched(names, patterns) if names else []
    return f"parameter 'skip': {layer_names.unmatched_message(missing, names)}" if missing \
        else None


def preflight(model: Any, recipe: Recipe, *, train: Any = _FROM_MODEL, test: Any = _FROM_MODEL,
              techniques: Optional[Mapping[str, TechniqueSpec]] = None,
              applicability: Optional[Mapping[str, Optional[str]]] = None) -> list[Problem]:
    """Every reason `recipe` cannot run on `model` and its data, in recipe order: the recipe's
    rules, then each step on the model, then the data. Empty: it can run.

    `model`: a `LoadedModel`, a `ModelInfo`, or None (the recipe's rules, and applicability
    when given). `train`,
    `test`: the data's `DataInfo` (or None: no such data); a LoadedModel's own by default.
    `techniques`: the specs to check against (default: the engine's registry, which imports
    torch; a face without torch passes the specs the engine sent). `applicability` overrides
    the model's (technique -> reason or None)."""
    specs = techniques if techniques is not None else technique_specs()
    problems = recipe_problems(recipe, specs)
    if model is None and applicability is None:
        return problems
    info = getattr(model, "info", model)
    if train is _FROM_MODEL:
        train = DataInfo.of(getattr(model, "train", None))
    if test is _FROM_MODEL:
        test = DataInfo.of(getattr(model, "test", None))
    unknown = {p.step for p in problems if p.kind == "unknown"}
    for i, step in enumerate(recipe.steps):
        if i in unknown:
            continue
        reason = _applies(model, info, applicability, step.name)
        if reason:
            problems.append(Problem("not_applicable", f"does not apply to this model: {reason}",
                                    i, step.name))
        elif _skip_problem(info, step.params.get("skip")):
            problems.append(Problem("params", _skip_problem(info, step.params.get("skip")), i,
                                    step.name, "skip"))
        elif specs[step.name].needs_labels and not (train is not None and train.labeled):
            problems.append(Problem("needs_labels", NEEDS_LABELS, i, step.name))
    shape = getattr(info, "output_shape", None)
    if test is not None and test.labeled and test.samples > 0 and shape is not None:
        problem = label_problem(test.name, shape, test.label_min, test.label_max,
                                test.classes)
        if problem is not None:
            problems.append(problem)
    return problems
