"""Recipes: an ordered list of steps, stored as JSON {"steps": [{"name": ..., "params": {...}}]}.

Validation names the step and the rule it breaks: unknown steps and parameters, out-of-range
values, two steps of one exclusive group, and steps out of order (e.g. prune after INT8, where
there are no float weights left to prune).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from . import params as params_mod
from . import safeload
from .errors import UserError

RECIPE_VERSION = 1

#: Why stages are ordered the way they are: structure first (pruning, fast path), then the
#: numeric format (quantize / cast), then memory layout, then graph-level work that bakes in
#: everything before it (freeze, compile); the grad mode wraps the call and may come anywhere.
STAGES = {
    10: "structure (prune)",
    20: "module swaps (transformer fast path)",
    30: "numeric format (INT8/INT4 quantization, FP16/BF16)",
    40: "memory layout (channels-last)",
    50: "graph (freeze / compile)",
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
        return {"version": RECIPE_VERSION, "steps": [s.to_json() for s in self.steps]}

    @classmethod
    def from_json(cls, data: Any, where: str = "recipe") -> "Recipe":
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise UserError(f"{where}: expected an object with a 'steps' list")
        steps = []
        for i, raw in enumerate(data["steps"], 1):
            if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
                raise UserError(f"{where}: step {i} must be an object with a 'name'")
            p = raw.get("params", {})
            if not isinstance(p, dict):
                raise UserError(f"{where}: step {i} ({raw['name']}): 'params' must be an object")
            steps.append(Step(raw["name"], dict(p)))
        return cls(steps)

    def save(self, path: str | Path, extra: Optional[dict] = None) -> None:
        data = self.to_json()
        if extra:
            data.update(extra)
        Path(path).write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        path = safeload.regular_file(path, "recipe file")  # a FIFO would block the read forever
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserError(f"{path}: no such recipe file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: not a JSON recipe ({exc})") from None
        return cls.from_json(data, str(path))

    def describe(self) -> str:
        if not self.steps:
            return "(no steps)"
        parts = []
        for s in self.steps:
            args = ",".join(f"{k}={v}" for k, v in s.params.items())
            parts.append(f"{s.name}:{args}" if args else s.name)
        return " + ".join(parts)

    def validate(self) -> list[tuple[Any, Any]]:
        """[(technique, params instance)] or UserError naming the step and the rule."""
        from .techniques import get
        resolved = []
        groups: dict[str, str] = {}
        last_stage, last_name = -1, None
        for i, step in enumerate(self.steps, 1):
            where = f"step {i} ({step.name})"
            tech = get(step.name)
            p = params_mod.build(tech.Params, step.params, where)
            if tech.group:
                if tech.group in groups:
                    raise UserError(f"{where}: only one {tech.group} step per recipe; "
                                    f"'{groups[tech.group]}' is already one")
                groups[tech.group] = step.name
            if tech.stage < last_stage:
                raise UserError(f"{where}: must come before '{last_name}' — "
                                f"{STAGES.get(tech.stage, tech.stage)} goes before "
                                f"{STAGES.get(last_stage, last_stage)}")
            last_stage, last_name = tech.stage, step.name
            resolved.append((tech, p))
        return resolved
