"""Export and project actions of the main window: the optimized model, recipe JSON, rebuild
script, report, and the session history as a project file.

Composition, not a mixin: `ExportActions(window)` owns the signals tests wait on; the runs,
the selected row and which rows can still export a model are the window's `Session`
(session_model.py): older rows, and rows reopened from a project, can still export their
recipe and report but not the model or the script (re-run to export).
All file writing is a request to the engine process (the variant by its id); slots here run
on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QObject, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMessageBox

PROJECT_FILTER = "QuantGUI project (*.qgproj.json *.json)"


def png_bytes(widget: Any) -> bytes:
    """The widget as PNG bytes (GUI thread only)."""
    from .plots.turns import release_all
    release_all()  # plots waiting for their turn to paint would be blank
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    widget.grab().save(buf, "PNG")
    buf.close()
    return bytes(data.data())


class ExportActions(QObject):
    finished = Signal(str, object)   # (kind, what the engine returned)
    failed = Signal(str, str)        # (kind, message)
    cancelled = Signal(str)

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.session = win.session
        self._open_after_save = False  # "Save" answered before opening a project
        self.session.selectionChanged.connect(lambda _row: self.sync())

    # -- bookkeeping ------------------------------------------------------------------------
    def add_run(self, label: str, result: Any) -> int:
        """A run finished on the open model: its history row, with its project entry (the
        model's source at the time of the run) and its model id while its variant is kept."""
        from .session_model import entry_json
        model = self.win.loaded
        entry = entry_json(model, result.recipe.describe(), result)
        return self.session.add(label, result, model.model_id, entry)

    def selected_row(self) -> Optional[int]:
        return self.session.selected_row()

    def variant_problem(self, row: Optional[int]) -> Optional[str]:
        return self.session.export_problem(row)

    def sync(self) -> None:
        """Enable the actions for the selected row (called by the window's sync_actions)."""
        a = self.win.actions_by_name
        busy = self.win.engine.busy
        row = self.selected_row()
        problem = self.variant_problem(row)
        for key in ("export_model", "export_script"):
            a[key].setEnabled(not busy and problem is None)
            a[key].setToolTip(problem or a[key].statusTip())
        for key in ("export_recipe", "export_report", "save_project"):
            a[key].setEnabled(not busy and row is not None)
        a["open_project"].setEnabled(not busy)
        self.win.suggest.sync()  # the window's one hook syncs the suggest action too

    # -- the menu actions (dialogs) ---------------------------------------------------------
    def _ask_folder(self, title: str) -> str:
        return QFileDialog.getExistingDirectory(self.win, title,
                                                self.win.app_settings.last_dir())

    def ask_export_model(self) -> None:
        folder = self._ask_folder("Export the optimized model into")
        if folder:
            self.export_model(folder)

    def ask_export_script(self) -> None:
        folder = self._ask_folder("Write the rebuild script into")
        if folder:
            self.export_script(folder)

    def ask_export_report(self) -> None:
        folder = self._ask_folder("Write the report into")
        if folder:
            self.export_report(folder)

    def ask_export_recipe(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.win, "Export recipe JSON", "recipe.json",
                                              "Recipe (*.json)")
        if path:
            self.export_recipe(path)

    def ask_save_project(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self.win, "Save project", "session.qgproj.json",
                                              PROJECT_FILTER)
        if path:
            self.save_project(path)

    def ask_open_project(self) -> None:
        """Opening a project replaces the history: runs not saved yet are offered a save."""
        unsaved = self.session.unsaved
        if not unsaved:
            self._choose_project()
            return
        B = QMessageBox.StandardButton
        box = QMessageBox(QMessageBox.Icon.Question, "Save the session first?",
                          f"{unsaved} run(s) of this session are not saved in a project.",
                          B.Save | B.Discard | B.Cancel, self.win)
        box.setObjectName("saveFirstBox")
        box.setInformativeText("Opening a project replaces the session history. Save the runs "
                               "to a project file first?")
        box.setDefaultButton(B.Save)
        box.setEscapeButton(B.Cancel)
        box.button(B.Discard).setText("Don't Save")
        box.finished.connect(lambda _: self._save_first_answered(box.standardButton(
            box.clickedButton()) if box.clickedButton() else B.Cancel))
        self.win.show_dialog(box)

    def _save_first_answered(self, button: QMessageBox.StandardButton) -> None:
        B = QMessageBox.StandardButton
        if button == B.Save:
            path, _ = QFileDialog.getSaveFileName(self.win, "Save project",
                                                  "session.qgproj.json", PROJECT_FILTER)
            if path:
                self._open_after_save = self.save_project(path)
        elif button == B.Discard:
            self._choose_project()

    def _choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.win, "Open project",
                                              self.win.app_settings.last_dir(), PROJECT_FILTER)
        if path:
            self.open_project(path)

    # -- the work (tests call these with a path) --------------------------------------------
    def export_model(self, folder: str | Path) -> bool:
        return self._export_variant("model", folder)

    def export_script(self, folder: str | Path) -> bool:
        return self._export_variant("script", folder)

    def _export_variant(self, what: str, folder: str | Path) -> bool:
        row = self.selected_row()
        if self._refuse(self.variant_problem(row)):
            return False
        run = self.session.runs[row]
        return self._start(what, {"what": what, "variant_id": run.result.variant_id,
                                  "folder": str(folder)})

    def _row_params(self, row: int) -> dict:
        """A row's report/recipe: by its variant when the engine still has it, else by its
        result (a project row, an evicted one)."""
        run = self.session.runs[row]
        if run.exportable:
            return {"variant_id": run.result.variant_id}
        loaded = self.win.loaded
        params = {"result": run.result.to_json()}
        if loaded is not None:
            params["model_id"] = loaded.model_id  # the open model's files are protected
        return params

    def export_recipe(self, path: str | Path) -> bool:
        row = self.selected_row()
        if self._refuse(None if row is not None else "Run a recipe first."):
            return False
        return self._start("recipe", {"what": "recipe", "path": str(path),
                                      **self._row_params(row)})

    def export_report(self, folder: str | Path) -> bool:
        import base64
        row = self.selected_row()
        if self._refuse(None if row is not None else "Run a recipe first."):
            return False
        plots = {k: base64.b64encode(v).decode("ascii") for k, v in self.plot_pngs().items()}
        return self._start("report", {"what": "report", "folder": str(folder), "plots": plots,
                                      **self._row_params(row)})

    def plot_pngs(self) -> dict[str, bytes]:
        results = self.win.results
        if not hasattr(results, "plots"):
            return {"results": png_bytes(results)}
        has = results.has_data()
        return {name: png_bytes(plot) for name, plot in results.plots().items()
                if has.get(name)}

    def save_project(self, path: str | Path) -> bool:
        runs = self.session.runs
        if self._refuse(None if runs else "Nothing to save: run a recipe first."):
            return False
        return self._start("save_project", {"path": str(path), "entries": [
            r.entry for r in runs if r.entry is not None]}, method="save_project")

    def open_project(self, path: str | Path) -> bool:
        return self._start("open_project", {"path": str(path)}, method="load_project")

    # -- plumbing ---------------------------------------------------------------------------
    def _refuse(self, problem: Optional[str]) -> bool:
        if problem:
            self.win.show_error("Cannot export", problem, warning=True)
            self.failed.emit("refused", problem)
        return bool(problem)

    def _start(self, kind: str, params: dict, method: str = "export") -> bool:
        win = self.win
        if win.engine.busy:
            win.phase.setText("Busy: wait for the current work to finish, or cancel it.")
            return False
        req = win.engine.submit(method, params, kind="export")
        req.progress.connect(win.show_progress)
        req.finished.connect(lambda value: self._done(kind, value))
        req.failed.connect(lambda err: self._failed(kind, err))
        req.cancelled.connect(lambda _how: self._cancelled(kind))
        req.warned.connect(win.add_warning)
        win.progress.setRange(0, 0)
        win.progress.show()
        win.phase.setText(f"Exporting ({kind.replace('_', ' ')})…")
        req.start()
        return True

    def _done(self, kind: str, value: dict) -> None:
        win = self.win
        win.progress.hide()
        if kind == "save_project":
            self.session.mark_saved()
            win.phase.setText(f"Project saved: {value.get('path')}")
        elif kind == "open_project":
            self._fill_history(value["project"])
            win.phase.setText(f"Project opened: {len(self.session.runs)} run(s) in the history "
                              "(models are not stored: re-run to export them).")
        elif kind == "model":
            m = (value.get("export") or {}).get("model") or {}
            check = m.get("check") or {}
            text = (f"Saved {Path(str(m.get('path'))).name} as {m.get('format')}.\n\nWhy this "
                    f"format: {m.get('reason')}\n\nReload check: max abs diff "
                    f"{_num(check.get('max_abs_diff'))} (tolerance {_num(check.get('tolerance'))})"
                    f" — {'passed' if check.get('passed') else 'FAILED'}.")
            box = QMessageBox(QMessageBox.Icon.Information, "Model exported", text,
                              QMessageBox.StandardButton.Ok, win)
            box.setDetailedText(str(value.get("text", "")))
            win.show_dialog(box)
            win.phase.setText(f"Model exported to {m.get('path')} ({m.get('format')}).")
        else:
            win.phase.setText(f"Exported {kind.replace('_', ' ')}: {value.get('path')}")
        self.finished.emit(kind, value)
        self.sync()
        if kind == "save_project" and self._open_after_save:
            self._open_after_save = False
            # Next turn of the event loop: this request still counts as running until it ends.
            QTimer.singleShot(0, self, self._choose_project)

    def _failed(self, kind: str, err: Any) -> None:
        self._open_after_save = False
        self.win.progress.hide()  # the runs are not saved: open nothing over them
        self.win.show_error(f"Could not {kind.replace('_', ' ')}" if "project" in kind else
                            f"Could not export the {kind}", err.message, err.details)
        self.failed.emit(kind, err.message)

    def _cancelled(self, kind: str) -> None:
        self._open_after_save = False
        self.win.progress.hide()
        self.win.phase.setText(f"Export cancelled ({kind.replace('_', ' ')}): nothing was written.")
        self.cancelled.emit(kind)

    def _fill_history(self, project: dict) -> None:
        """The runs of a project (its JSON, read by the engine) replace the history."""
        from quantgui.core import RunResult

        from .session_model import Run

        def result(entry: dict) -> Any:
            # An entry saved without measurements still gets its row (its recipe and model,
            # nothing measured) and is saved back as it was.
            if entry.get("result") is not None:
                return RunResult.from_json(entry["result"])
            return RunResult.from_json({"source": str((entry.get("source") or {}).get(
                "source") or ""), "recipe": entry.get("recipe")})
        self.session.replace([Run(str(e.get("label", "")), result(e), e)
                              for e in project.get("entries") or []])
        self.win.sync_actions()


def _num(x: Any) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) else "–"
