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

#: Runs (newest first) whose optimized model stays available for export.
KEEP_VARIANTS = 3
NO_VARIANT = ("The optimized model of this row is no longer in memory (only the newest "
              f"{KEEP_VARIANTS} runs keep theirs, and projects store none): re-run to export.")


@dataclass
class Run:
    """One history row."""

    label: str                 # the recipe as shown (plus a note such as the demo's)
    result: Any                # RunResult
    entry: Any = None          # ProjectEntry: what a project saves of it (model source too)
    model: Any = None          # what it ran on while its variant can still be exported

    @property
    def exportable(self) -> bool:
        return self.model is not None and (self.result.variant is not None or
                                           bool(self.result.variant_id))


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
        for old in kept[:-KEEP_VARIANTS]:
            old.result.variant, old.model = None, None  # free the optimized model's memory
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

    def evicted(self, variant_id: str) -> None:
        """The engine dropped a variant: its row can no longer export a model."""
        for r in self.runs:
            if r.result.variant_id == variant_id:
                r.result.variant, r.model = None, None
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
        return None if self.runs[row].exportable else NO_VARIANT

    # -- saved or not -----------------------------------------------------------------------
    @property
    def unsaved(self) -> int:
        """How many runs are not in the last saved/opened project (a project saves the whole
        history and opening one replaces it, so the count at the last save is all it needs)."""
        return max(0, len(self.runs) - self._saved_rows)

    def mark_saved(self) -> None:
        self._saved_rows = len(self.runs)
        self.unsavedChanged.emit(0)
