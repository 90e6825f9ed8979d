"""The session history as a project file: which model, which recipe, what was measured.

A project is JSON, never pickle, and holds no model (models are big and the source file is
named instead):

    {"format": "quantgui-project", "version": 1, "saved": "2025-01-01T12:00:00",
     "entries": [{"label": "...", "created": "...",
                  "source": {"source": "example:digits-cnn", "format": "example", "origin": {...}},
                  "recipe": {"version": 1, "steps": [...]},
                  "result": {... RunResult.to_json() ...} or null}]}

Entries hold typed `RunResult`s; `RunResult.from_json` reads each stored result, so files saved
by older versions (without "schema", with older verdict fields) still open, and a result of a
newer schema is refused naming its JSON path.

`load_project` reads the file through `safefiles.read_json` (regular files only, size, depth and
NaN limits) and checks it against `SCHEMA` (recipes against the recipe schema); anything wrong
is a `UserError` naming the file and the JSON path of the first bad value. A file without a
"version" is read as version 1.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from .. import recipe as recipe_mod
from .. import schema
from ..safefiles import read_json
from ..errors import UserError
from ..progress import Task
from ..recipe import Recipe
from ..results import RunResult
from .atomic import PathLike, write_text_atomic

PROJECT_FORMAT = "quantgui-project"
PROJECT_VERSION = 1
SUFFIX = ".qgproj.json"
#: A session's history; more rows than anyone keeps is a broken or hostile file.
MAX_ENTRIES = 10_000

#: Where the model came from: its `source` string; the rest (format, origin, ...) is data.
SOURCE_SCHEMA = schema.Obj({"source": schema.Text()}, required=("source",), rest=schema.Data())
#: One history row. `result` is RunResult.to_json(): measured data, only its limits checked.
ENTRY_SCHEMA = schema.Obj({"label": schema.Text(), "created": schema.Text(100),
                           "source": SOURCE_SCHEMA, "recipe": recipe_mod.SCHEMA,
                           "result": schema.Nullable(schema.Data(is_object=True))},
                          required=("source", "recipe"))
SCHEMA = schema.Obj({"format": schema.Const(PROJECT_FORMAT, "not a QuantGUI project"),
                     "version": schema.Version(PROJECT_VERSION, "project"),
                     "saved": schema.Text(100),
                     "entries": schema.ListOf(ENTRY_SCHEMA, MAX_ENTRIES, "entries")},
                    required=("format", "entries"))


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _result(result: Any) -> Optional[RunResult]:
    if result is None or isinstance(result, RunResult):
        return result
    return RunResult.from_json(result)


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
    result: Optional[RunResult] = None
    label: str = ""
    created: str = field(default_factory=_now)

    @classmethod
    def from_run(cls, loaded: Any, recipe: Recipe, result: Any = None,
                 label: str = "") -> "ProjectEntry":
        """The entry of a run (`result`: a RunResult, its JSON, or None: not measured)."""
        return cls(model_source(loaded), recipe, _result(result), label or recipe.describe())

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "created": self.created, "source": _jsonable(self.source),
                "recipe": self.recipe.to_json(),
                "result": None if self.result is None else self.result.to_json()}

    @classmethod
    def from_json(cls, data: Any, where: str = "project entry",
                  parts: tuple = ()) -> "ProjectEntry":
        """An entry from its JSON; UserError "<where>: <JSON path>: <reason>" otherwise
        (`parts`: where `data` sits in its file)."""
        return cls._of(schema.check(ENTRY_SCHEMA, data, where, parts), where, parts)

    @classmethod
    def _of(cls, checked: dict, where: str, parts: tuple) -> "ProjectEntry":
        # Results saved by any QuantGUI are read by the one reader (older ones judged again).
        result = checked.get("result")
        at = f"{where}: {schema.json_path(parts + ('result',))}"
        return cls(checked["source"], Recipe.of_checked(checked["recipe"]),
                   None if result is None else RunResult.from_json(result, at),
                   checked.get("label", ""), checked.get("created", ""))


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
    """Reopen a project file; UserError naming the file and the problem for anything that is
    not one (see SCHEMA)."""
    path = Path(path).expanduser()
    data = read_json(path, "project file")
    if not isinstance(data, dict) or "format" not in data:
        raise UserError(f"{path}: $: not a QuantGUI project (no \"format\": "
                        f"\"{PROJECT_FORMAT}\")")
    checked = schema.check(SCHEMA, data, str(path))
    return Project([ProjectEntry._of(e, str(path), ("entries", i))
                    for i, e in enumerate(checked["entries"])], checked.get("saved", ""))
