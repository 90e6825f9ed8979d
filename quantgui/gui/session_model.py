"""The one model of a session the window's parts observe: the model open, the runs (typed
`RunResult`s with their labels and project entries), the history row selected, and whether
runs are not saved in a project yet.

Everything that shows or exports runs reads them here and listens to the signals; nothing
keeps a parallel list in step by row number. A run's optimized model (its variant) stays
available for export only for the newest `KEEP_VARIANTS` runs; `export_problem(row)` says why
an older row, or a row reopened from a project, cannot export a model. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from PySide6.QtCore import QObject, Signal

#: Runs (newest first) whose optimized model the engine keeps for export (its hello says).
KEEP_VARIANTS = 8


def no_variant(keep: int = KEEP_VARIANTS) -> str:
    return ("The optimized model of this row is no longer in memory (only the newest "
            f"{keep} runs keep theirs, projects store none, and a restarted engine starts "
            "empty): re-run to export.")


NO_VARIANT = no_variant()


@dataclass
class Run:
    """One history row."""

    label: str                 # the recipe as shown (plus a note such as the demo's)
    result: Any                # RunResult
    entry: Any = None          # ProjectEntry: what a project saves of it (model source too)
    model: Any = None          # the engine's model_id while its variant can be exported

    @property
    def exportable(self) -> bool:
        return self.model is not None and bool(self.result.variant_id)


class Session(QObject):
    runAdded = Signal(int)            # the new row's index
    runsReplaced = Signal()           # a project replaced the whole history
    selectionChanged = Signal(int)    # the selected row (-1: none)
    modelChanged = Signal(object)     # the open model (None: none)
    unsavedChanged = Signal(int)      # runs not in the last saved/opened project

    def __init__(self, parent: Optional[QObject] = None) -> None:
        super().__init__(parent)
        self.runs: list[Run] = []
        self.model: Any = None          # the open model
        self.model_args: dict = {}      # what it was opened with (the engine re-opens it so)
        self._selected = -1
        self._saved_rows = 0
        self.keep_variants = KEEP_VARIANTS

    # -- the model --------------------------------------------------------------------------
    def set_model(self, model: Any, args: Optional[dict] = None) -> None:
        self.model = model
        if args is not None:
            self.model_args = dict(args)
        self.modelChanged.emit(model)

    # -- runs -------------------------------------------------------------------------------
    @property
    def history(self) -> list[tuple[str, Any]]:
        """(label, RunResult) per run, in run order (CSV/JSON export, the demo, tests)."""
        return [(r.label, r.result) for r in self.runs]

    def add(self, label: str, result: Any, model: Any = None, entry: Any = None) -> int:
        """Append a finished run; `model` is what it ran on (kept while its variant is)."""
        self.runs.append(Run(label, result, entry, model))
        kept = [r for r in self.runs if r.exportable]
        for old in kept[:-self.keep_variants]:
            old.model = None  # the engine dropped it too (it keeps the same number)
        row = len(self.runs) - 1
        self.runAdded.emit(row)
        self.unsavedChanged.emit(self.unsaved)
        return row

    def replace(self, runs: list[Run]) -> None:
        """A project was opened: its runs are the history, saved as they are."""
        self.runs = list(runs)
        self._selected = -1
        self._saved_rows = len(self.runs)
        self.runsReplaced.emit()
        self.selectionChanged.emit(-1)
        self.unsavedChanged.emit(0)

    def evicted(self, variant_ids: Any = None) -> None:
        """The engine dropped these variants (None: all, it was restarted): their rows can no
        longer export a model."""
        for r in self.runs:
            if variant_ids is None or r.result.variant_id in variant_ids:
                r.model = None
        self.selectionChanged.emit(self._selected)

    # -- selection --------------------------------------------------------------------------
    def select(self, row: int) -> None:
        self._selected = row if 0 <= row < len(self.runs) else -1
        self.selectionChanged.emit(self._selected)

    def selected_row(self) -> Optional[int]:
        """The row selected in the history, else the last one; None when empty."""
        if not self.runs:
            return None
        return self._selected if self._selected >= 0 else len(self.runs) - 1

    def selected(self) -> Optional[Run]:
        row = self.selected_row()
        return None if row is None else self.runs[row]

    def export_problem(self, row: Optional[int]) -> Optional[str]:
        """Why the row cannot export its optimized model (or script), or None."""
        if row is None:
            return "Run a recipe first."
        return None if self.runs[row].exportable else no_variant(self.keep_variants)

    # -- saved or not -----------------------------------------------------------------------
    @property
    def unsaved(self) -> int:
        """How many runs are not in the last saved/opened project (a project saves the whole
        history and opening one replaces it, so the count at the last save is all it needs)."""
        return max(0, len(self.runs) - self._saved_rows)

    def mark_saved(self) -> None:
        self._saved_rows = len(self.runs)
        self.unsavedChanged.emit(0)


@dataclass
class OpenedModel:
    """A model open in the engine, as the GUI knows it: the engine's OPENED answer, typed
    (ModelInfo, DataInfo); `model_id` addresses it in the engine."""

    model_id: str
    info: Any                     # ModelInfo
    test: Any = None              # DataInfo or None
    train: Any = None             # DataInfo or None
    source: Any = None            # what a ProjectEntry names the model by
    input_kinds: tuple = ()
    cpu: tuple = ()

    @classmethod
    def from_json(cls, value: dict) -> "OpenedModel":
        from quantgui.core import DataInfo, ModelInfo
        data = value.get("data") or {}
        return cls(str(value["model_id"]), ModelInfo.from_json(value["info"]),
                   DataInfo.from_json(data.get("test")), DataInfo.from_json(data.get("train")),
                   value.get("source") or {}, tuple(value.get("input_kinds") or ()),
                   tuple(value.get("cpu_capabilities") or ()))


def entry_json(model: OpenedModel, label: str, result: Any) -> dict:
    """The project entry of a run (ProjectEntry.to_json's form, built without the engine)."""
    import datetime
    return {"label": label, "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "source": model.source, "recipe": result.recipe.to_json(),
            "result": result.to_json()}
