"""Export: the optimized model, a standalone script, a report and the session as a project.

Every function takes an optional `task` (progress under the phase "export", cancel checks) and
writes atomically: a cancel or a failure leaves no partial file. Folders that cannot be written
give a `UserError`, a full disk `NoSpace`; no input the user gave is ever overwritten (guard.py).
`export_run(..., whole_folder=True)` (the CLI's `--save`/`--report`) makes the whole folder
all-or-nothing (folder.py).

    from quantgui.core.export import export_run
    out = export_run("out/", loaded, result, task=task)   # model + script + report
    print(out.describe())

Pieces: `save_model` (model, verified by reloading), `write_script` / `write_script_for_run`
(rebuild script), `write_report` (report.html, report.md, recipe.json), `save_project` /
`load_project` (session history).
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ..progress import Task, quiet_task
from .atomic import check_writable_dir, ensure_writable_dir, refuse_overwrite, staged
from .folder import MARKER, check_export_folder, export_folder
from .guard import check_outputs, input_paths, protected_paths, refuse_output, same_path
from .project import Project, ProjectEntry, load_project, model_source, save_project
from .report import ReportFiles, render_html, render_markdown, write_recipe, write_report
from .space import NoSpace

if TYPE_CHECKING:
    from .save_model import SavedModel
    from .script import ScriptExport

#: Names whose modules import torch, resolved on first use: the rest of the package (atomic
#: writes, projects, reports) imports without torch, and the GUI process writes with it.
_TORCH_NAMES = {"ExportCheckFailed": "save_model", "SavedModel": "save_model",
                "save_model": "save_model", "ScriptExport": "script",
                "generate_script": "script", "write_script": "script",
                "write_script_for_run": "script"}


def __getattr__(name: str) -> Any:
    if name not in _TORCH_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_TORCH_NAMES[name]}"), name)
    globals()[name] = value  # resolved once (a test may replace it afterwards)
    return value


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value: Any) -> None:
        # Importing the submodule save_model binds it here; the function of that name stays.
        if not (name == "save_model" and isinstance(value, types.ModuleType)):
            super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

#: Room for the texts of an export (script, recipe, report, marker) beside the model bytes.
TEXT_BYTES = 256_000


@dataclass
class ExportResult:
    out_dir: Path
    model: Optional[SavedModel] = None
    script: Optional[ScriptExport] = None
    report: Optional[ReportFiles] = None
    recipe: Optional[Path] = None
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = []
        if self.model is not None:
            out.append(f"model: {self.model.path} ({self.model.format}) — {self.model.reason}")
            out.append(f"check: {self.model.check.describe()}")
            out += [f"note: {n}" for n in self.model.notes]
        if self.recipe is not None:
            out.append(f"recipe: {self.recipe}")
        if self.script is not None:
            out.append(f"script: {self.script.describe()}")
        if self.report is not None:
            out.append(f"report: {self.report.html} (+ {self.report.markdown.name}, "
                       f"{self.report.recipe.name})")
        return out + self.notes

    def describe(self) -> str:
        return "\n".join(self.lines())

    def to_json(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir),
                "model": self.model.to_json() if self.model else None,
                "script": self.script.to_json() if self.script else None,
                "report": self.report.to_json() if self.report else None, "notes": self.notes}


def estimate_bytes(loaded: Any, result: Any, *, model: bool = True, script: bool = True,
                   report: bool = True, plots: Optional[dict[str, bytes]] = None) -> int:
    """About how many bytes `export_run` writes, from the sizes the run measured."""
    def size(which: str) -> int:
        return int(getattr(getattr(result, which, None), "size_bytes", None) or 0)
    n = TEXT_BYTES
    if model:
        n += size("after")
    if script:
        example = getattr(loaded, "example", None)
        tensors = list(example.args) + list(example.kwargs.values()) if example is not None else []
        n += sum(t.numel() * t.element_size() for t in tensors if hasattr(t, "element_size"))
        if dict(getattr(loaded, "origin", None) or {}).get("example"):
            n += size("before")  # a built-in example ships its original weights with the script
    if report:
        n += sum(len(b) for b in (plots or {}).values())
    return n


def _moved(value: Any, old: Path, new: Path) -> Any:
    """`value` with every path (and path in a text) under `old` moved under `new`."""
    if isinstance(value, Path):
        try:
            return new / value.relative_to(old)
        except ValueError:
            return value
    if isinstance(value, str):
        return value.replace(str(old), str(new))
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(v, old, new) for v in value)
    if isinstance(value, dict):
        return {k: _moved(v, old, new) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.replace(value, **{f.name: _moved(getattr(value, f.name), old, new)
                                             for f in dataclasses.fields(value) if f.init})
    return value


def export_run(out_dir: Any, loaded: Any, result: Any, *, model: bool = True,
               script: bool = True, report: bool = True, recipe: bool = True,
               fmt: str = "auto",
               plots: Optional[dict[str, bytes]] = None,
               whole_folder: bool = False, protected: Optional[list] = None,
               exports: Optional[list[str]] = None,
               task: Optional[Task] = None) -> ExportResult:
    """Everything for one finished run (`RunResult` with its `.variant`) into `out_dir`.

    `whole_folder`: the folder is written all-or-nothing and replaces a previous export there
    (folder.py); otherwise the files are added to the folder, each part atomically.
    `protected`: inputs never to write over, besides the files `loaded` came from. `exports`:
    lines about other exports of this run, listed in the report."""
    task = task or quiet_task()
    protected = list(protected or []) + protected_paths(loaded)
    parts = dict(model=model, script=script, report=report, recipe=recipe, fmt=fmt,
                 plots=plots, protected=protected, exports=list(exports or []), task=task)
    if not whole_folder:
        out_dir = ensure_writable_dir(out_dir)
        return _export_into(out_dir, out_dir, loaded, result, **parts)
    shown = Path(out_dir).expanduser()
    need = estimate_bytes(loaded, result, model=model, script=script, report=report,
                          plots=plots)
    with export_folder(shown, protected, need, task) as tmp:
        done = _export_into(tmp, shown, loaded, result, **parts)
    return _moved(done, tmp, shown)


def check_output_paths(outputs: list[tuple[str, Optional[str], bool]], *,
                       model: Optional[str] = None, arch: Optional[str] = None,
                       data: Optional[str] = None, example_input: Optional[str] = None,
                       recipe: Optional[str] = None) -> list:
    """Before any work: every output `(flag, path, is_folder)` against the inputs named on a
    command line and against each other (guard.py), and each folder must be able to take a
    whole-folder export (folder.py). Returns the inputs as `(what, path)` pairs."""
    inputs = input_paths(model, arch, data, example_input, recipe)
    check_outputs(outputs, inputs)
    for flag, path, folder in outputs:
        if folder and path:
            check_export_folder(path, inputs, flag)
    return inputs


def export_folders(save: Optional[str], report: Optional[str], loaded: Any, result: Any,
                   protected: Optional[list] = None,
                   task: Optional[Task] = None) -> list[str]:
    """The CLI's `--save DIR` (model, script, recipe) and `--report DIR`, each folder
    all-or-nothing; one export holding both when they name one folder. Returns the lines
    describing what was written."""
    together = bool(save and report and same_path(save, report))
    lines: list[str] = []
    if save:
        lines += export_run(save, loaded, result, report=together, whole_folder=True,
                            protected=protected, task=task).lines()
    if report and not together:
        lines += export_run(report, loaded, result, model=False, script=False,
                            whole_folder=True, protected=protected, exports=lines,
                            task=task).lines()
    return lines


def _export_into(out_dir: Path, shown: Path, loaded: Any, result: Any, *, model: bool,
                 script: bool, report: bool, recipe: bool, fmt: str,
                 plots: Optional[dict[str, bytes]], protected: list, exports: list[str],
                 task: Task) -> ExportResult:
    from ..run import batched_example
    pkg = sys.modules[__name__]  # the torch names, resolved now (or as a test replaced them)
    save_model, write_script = pkg.save_model, pkg.write_script
    done = ExportResult(out_dir)
    example = batched_example(loaded, getattr(result, "batch_size", None))
    if model:
        if getattr(result, "variant", None) is None:
            raise ValueError("the run result holds no optimized model (variant)")
        done.model = save_model(result.variant, example, out_dir, fmt=fmt, recipe=result.recipe,
                                steps=result.steps, protected=protected, task=task)
    if script:
        done.script = write_script(out_dir, loaded, result.recipe, result.steps,
                                   getattr(result, "variant", None), example,
                                   threads=getattr(result, "threads", None),
                                   protected=protected, task=task)
    if recipe and not report:  # the report writes its own recipe.json
        done.recipe = write_recipe(out_dir, result, protected=protected, task=task)
    if report:  # the report lists where the files will be, not the temp folder
        lines = exports + [_moved(line, out_dir, shown) for line in done.lines()]
        done.report = write_report(out_dir, result, plots=plots, exports=lines,
                                   protected=protected, task=task)
    return done


__all__ = [
    "ExportCheckFailed", "ExportResult", "MARKER", "NoSpace", "Project", "ProjectEntry",
    "ReportFiles", "SavedModel", "ScriptExport", "check_export_folder", "check_output_paths",
    "check_outputs",
    "check_writable_dir", "ensure_writable_dir", "estimate_bytes", "export_folder",
    "export_folders", "export_run",
    "generate_script", "input_paths", "load_project", "model_source", "protected_paths",
    "refuse_output", "refuse_overwrite", "render_html", "render_markdown", "same_path",
    "save_model", "save_project", "staged", "write_recipe", "write_report", "write_script",
    "write_script_for_run",
]
