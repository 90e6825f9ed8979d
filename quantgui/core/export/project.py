"""The session history as a project file: which model, which recipe, what was measured.

A project is JSON, never pickle, and holds no model (models are big and the source file is
named instead):

    {"format": "quantgui-project", "version": 1, "saved": "2025-01-01T12:00:00",
     "entries": [{"label": "...", "created": "...",
                  "source": {"source": "example:digits-cnn", "format": "example", "origin": {...}},
                  "recipe": {"version": 1, "steps": [...]},
                  "result": {... RunResult.to_json() ...} or null}]}

`load_project` validates the file and every entry (recipes with `Recipe.from_json`) and turns
anything wrong into a `UserError` that names the file and the entry.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import safeload
from ..errors import UserError
from ..progress import Task
from ..recipe import Recipe
from .atomic import PathLike, write_text_atomic

PROJECT_FORMAT = "quantgui-project"
PROJECT_VERSION = 1
SUFFIX = ".qgproj.json"


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _result_json(result: Any) -> Optional[dict]:
    if result is None or isinstance(result, dict):
        return result
    return result.to_json()


def model_source(loaded: Any) -> dict[str, Any]:
    """What names the model of a `LoadedModel` in a project (no tensors)."""
    info = getattr(loaded, "info", None)
    return {"source": getattr(info, "source", None), "format": getattr(info, "format", None),
            "name": getattr(info, "name", None),
            "example_input": getattr(info, "example_input", None),
            "origin": _jsonable(dict(getattr(loaded, "origin", None) or {}))}


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


@dataclass
class ProjectEntry:
    source: dict[str, Any]
    recipe: Recipe
    result: Optional[dict] = None
    label: str = ""
    created: str = field(default_factory=_now)

    @classmethod
    def from_run(cls, loaded: Any, recipe: Recipe, result: Any = None,
                 label: str = "") -> "ProjectEntry":
        return cls(model_source(loaded), recipe, _result_json(result),
                   label or recipe.describe())

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "created": self.created, "source": _jsonable(self.source),
                "recipe": self.recipe.to_json(), "result": _jsonable(self.result)}

    @classmethod
    def from_json(cls, data: Any, where: str) -> "ProjectEntry":
        if not isinstance(data, dict):
            raise UserError(f"{where}: must be an object")
        source = data.get("source")
        if not isinstance(source, dict) or not isinstance(source.get("source"), str):
            raise UserError(f"{where}: 'source' must be an object naming the model "
                            f"(its 'source' string)")
        if "recipe" not in data:
            raise UserError(f"{where}: no 'recipe'")
        recipe = Recipe.from_json(data["recipe"], f"{where} recipe")
        result = data.get("result")
        if result is not None and not isinstance(result, dict):
            raise UserError(f"{where}: 'result' must be an object or null")
        label, created = data.get("label", ""), data.get("created", "")
        if not isinstance(label, str) or not isinstance(created, str):
            raise UserError(f"{where}: 'label' and 'created' must be strings")
        return cls(source, recipe, result, label, created)


@dataclass
class Project:
    entries: list[ProjectEntry] = field(default_factory=list)
    saved: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"format": PROJECT_FORMAT, "version": PROJECT_VERSION, "saved": self.saved or _now(),
                "entries": [e.to_json() for e in self.entries]}


def save_project(path: PathLike, entries: list, task: Optional[Task] = None,
                 protected: Optional[list] = None) -> Path:
    """Write the session history atomically; `entries` are `ProjectEntry`s (or a `Project`)."""
    if isinstance(entries, Project):
        entries = entries.entries
    for i, e in enumerate(entries, 1):
        if not isinstance(e, ProjectEntry):
            raise TypeError(f"entry {i}: expected a ProjectEntry, got {type(e).__name__}")
    project = Project(list(entries), _now())
    text = json.dumps(project.to_json(), indent=2, allow_nan=False)
    if task is not None:
        task.report("export", 0, 1, "saving the project")
    return write_text_atomic(path, text + "\n", task, protected)


def load_project(path: PathLike) -> Project:
    """Reopen a project file; UserError naming the problem for anything that is not one."""
    path = safeload.regular_file(path, "project file")  # a FIFO would block the read forever
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: no such project file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a folder, not a project file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the project file ({exc})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not a QuantGUI project (invalid JSON: {exc})") from None
    if not isinstance(data, dict) or data.get("format") != PROJECT_FORMAT:
        raise UserError(f"{path}: not a QuantGUI project (no \"format\": \"{PROJECT_FORMAT}\")")
    version = data.get("version")
    if not isinstance(version, int) or version < 1:
        raise UserError(f"{path}: project 'version' must be a positive integer")
    if version > PROJECT_VERSION:
        raise UserError(f"{path}: project version {version} is newer than this QuantGUI "
                        f"understands ({PROJECT_VERSION}); update QuantGUI")
    raw = data.get("entries")
    if not isinstance(raw, list):
        raise UserError(f"{path}: 'entries' must be a list")
    entries = [ProjectEntry.from_json(e, f"{path}: entry {i}") for i, e in enumerate(raw, 1)]
    saved = data.get("saved", "")
    return Project(entries, saved if isinstance(saved, str) else "")
