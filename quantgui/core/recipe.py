"""Recipes: an ordered list of steps, stored as JSON
{"version": 1, "steps": [{"name": ..., "params": {...}}]}.

Reading one (`load`, `from_json`) checks it against `SCHEMA` and names the file and the JSON
path of the first bad value: unknown keys, techniques and parameters, a technique twice,
out-of-range or non-finite values, a version this QuantGUI does not know. `validate` then names
the step and the rule a well-formed recipe breaks: two steps of one exclusive group, and steps
out of order (e.g. prune after INT8, where there are no float weights left to prune).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import params as params_mod
from . import schema
from .budget import SCHEMA as BUDGET_SCHEMA, QualityBudget

RECIPE_VERSION = 1
#: A recipe is a few hundred bytes; one saved with its measured results (report recipe.json)
#: a few kB.
RECIPE_MAX_BYTES = 4 * 2**20

#: What a recipe file may hold. `environment` and `result` are the measurements a report's
#: recipe.json carries along (see export.report.recipe_json); reading the recipe ignores them.
SCHEMA = schema.Obj({"version": schema.Version(RECIPE_VERSION, "recipe"),
                     "steps": schema.Steps(),
                     "environment": schema.Nullable(schema.Data(is_object=True)),
                     "result": schema.Nullable(schema.Data(is_object=True)),
                     # the data reference (data.DataSpec.to_json) the recipe was run on
                     "data": schema.Nullable(schema.Data(is_object=True)),
                     # the quality budget the recipe is meant to keep (budget.QualityBudget)
                     "budget": schema.Nullable(BUDGET_SCHEMA)},
                    required=("steps",))

#: Why stages are ordered the way they are: structure first (pruning, fast path), then the
#: numeric format (quantize / cast), then memory layout, then graph-level work that bakes in
#: everything before it (freeze, compile), then the runtime that executes the result (it takes
#: the eager FP32 model and does its own INT8); the grad mode wraps the call and may come anywhere.
STAGES = {
    10: "structure (prune)",
    20: "module swaps (transformer fast path)",
    30: "numeric format (INT8/INT4 quantization, FP16/BF16)",
    40: "memory layout (channels-last)",
    50: "graph (freeze / compile)",
    60: "runtime (ONNX Runtime / OpenVINO / AOTInductor: the engine that runs the model)",
    90: "call mode (inference mode)",
}


@dataclass
class Step:
    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"name": self.name, "params": dict(self.params)}


@dataclass
class Recipe:
    steps: list[Step] = field(default_factory=list)
    #: The data it is meant for (a DataSpec's JSON; read with DataSpec.from_json), or None.
    data: Optional[dict] = None
    #: The quality budget it must keep (None: none stated; old recipes have none).
    budget: Optional[QualityBudget] = None

    @classmethod
    def of(cls, *names_or_steps: Any) -> "Recipe":
        steps = []
        for item in names_or_steps:
            if isinstance(item, Step):
                steps.append(item)
            elif isinstance(item, str):
                steps.append(Step(item))
            else:
                name, p = item
                steps.append(Step(name, dict(p)))
        return cls(steps)

    def to_json(self) -> dict:
        out = {"version": RECIPE_VERSION, "steps": [s.to_json() for s in self.steps]}
        if self.data is not None:
            out["data"] = dict(self.data)
        if self.budget is not None and not self.budget.empty:
            out["budget"] = self.budget.to_json()
        return out

    @classmethod
    def from_json(cls, data: Any, where: str = "recipe", parts: tuple = ()) -> "Recipe":
        """The recipe in `data` (parameter values coerced to their types); a UserError
        "<where>: <JSON path>: <reason>" for anything `SCHEMA` refuses. `parts` is the path of
        `data` inside a larger file (a project entry's recipe)."""
        return cls.of_checked(schema.check(SCHEMA, data, where, parts))

    @classmethod
    def of_checked(cls, checked: dict) -> "Recipe":
        """The recipe of what `SCHEMA` returned (a recipe inside a checked project)."""
        budget = checked.get("budget")
        return cls([Step(s["name"], s["params"]) for s in checked["steps"]], checked.get("data"),
                   None if budget is None else QualityBudget(**budget))

    def save(self, path: str | Path, extra: Optional[dict] = None) -> None:
        data = self.to_json()
        if extra:
            data.update(extra)
        from .export.atomic import write_text_atomic  # here: export imports this module
        write_text_atomic(path, json.dumps(data, indent=2))  # whole or not at all

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        """A recipe file; every problem (not a regular file, too large, not JSON, NaN, too
        deep, anything `SCHEMA` refuses) is one UserError naming the file once."""
        from .safeload import read_json  # (torch: not at import time, the GUI starts without)
        path = Path(path).expanduser()
        data = read_json(path, "recipe file", max_bytes=RECIPE_MAX_BYTES)
        return cls.from_json(data, str(path))

    def describe(self) -> str:
        if not self.steps:
            return "(no steps)"
        parts = []
        for s in self.steps:
            args = ",".join(f"{k}={params_mod.list_text(v) if isinstance(v, list) else v}"
                            for k, v in s.params.items())  # the --step syntax
            parts.append(f"{s.name}:{args}" if args else s.name)
        return " + ".join(parts)

    def validate(self, json_paths: bool = False) -> list[tuple[Any, Any]]:
        """[(technique, params instance)] or UserError naming the step ("step 2 (prune)", or
        with `json_paths` for a recipe read from a file "$.steps[1] (prune)") and the rule
        (the first of run/preflight.py's recipe problems)."""
        from .results import technique_specs
        from .run.preflight import recipe_problems, require
        from .techniques import get
        require(recipe_problems(self, technique_specs()), json_paths)
        resolved = []
        for i, step in enumerate(self.steps):
            tech = get(step.name)
            at = f"$.steps[{i}]" if json_paths else f"step {i + 1}"
            resolved.append((tech, params_mod.build(tech.Params, step.params,
                                                    f"{at} ({step.name})")))
        return resolved
