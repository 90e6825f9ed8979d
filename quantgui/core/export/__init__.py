"""Export: the optimized model, a standalone script, a report and the session as a project.

Every function takes an optional `task` (progress under the phase "export", cancel checks) and
writes atomically: a cancel or a failure leaves no partial file. Folders that cannot be written
give a `UserError`; the model file the user opened is never overwritten.

    from quantgui.core.export import export_run
    out = export_run("out/", loaded, result, task=task)   # model + script + report
    print(out.describe())

Pieces: `save_model` (model, verified by reloading), `write_script` / `write_script_for_run`
(rebuild script), `write_report` (report.html, report.md, recipe.json), `save_project` /
`load_project` (session history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..progress import Task, quiet_task
from .atomic import check_writable_dir, ensure_writable_dir, refuse_overwrite, staged
from .project import Project, ProjectEntry, load_project, model_source, save_project
from .report import ReportFiles, render_html, render_markdown, write_recipe, write_report
from .save_model import ExportCheckFailed, SavedModel, save_model
from .script import ScriptExport, generate_script, write_script, write_script_for_run


def protected_paths(loaded: Any) -> list[str]:
    """Files of the user's model that an export must never overwrite."""
    paths = []
    info = getattr(loaded, "info", None)
    source = getattr(info, "source", "") or ""
    if source and not source.startswith("example:"):
        paths.append(source)
    origin = dict(getattr(loaded, "origin", None) or {})
    for key in ("weights", "path", "file", "source"):
        if isinstance(origin.get(key), str):
            paths.append(origin[key])
    arch = origin.get("arch")
    if isinstance(arch, str) and ":" in arch and not arch.startswith("quantgui."):
        paths.append(arch.rsplit(":", 1)[0])
    return paths


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


def export_run(out_dir: Any, loaded: Any, result: Any, *, model: bool = True,
               script: bool = True, report: bool = True, recipe: bool = True,
               fmt: str = "auto",
               plots: Optional[dict[str, bytes]] = None,
               task: Optional[Task] = None) -> ExportResult:
    """Everything for one finished run (`RunResult` with its `.variant`) into `out_dir`."""
    from ..run import batched_example
    task = task or quiet_task()
    out_dir = ensure_writable_dir(out_dir)
    protected = protected_paths(loaded)
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
    if report:
        done.report = write_report(out_dir, result, plots=plots,
                                   exports=[line for line in done.lines()],
                                   protected=protected, task=task)
    return done


__all__ = [
    "ExportCheckFailed", "ExportResult", "Project", "ProjectEntry", "ReportFiles", "SavedModel",
    "ScriptExport", "check_writable_dir", "ensure_writable_dir", "export_run", "generate_script", "load_project",
    "model_source", "protected_paths", "refuse_overwrite", "render_html", "render_markdown",
    "save_model", "save_project", "staged", "write_recipe", "write_report", "write_script",
    "write_script_for_run",
]
