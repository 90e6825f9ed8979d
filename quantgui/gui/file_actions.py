"""File-menu actions of the main window: open (file, folder, recent, drop), recipes, exports.

A mixin so the window module stays small; every method runs on the GUI thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtWidgets import QFileDialog

from . import model_dialogs, session


class FileActions:
    """Mixed into MainWindow (uses its app_settings, optimize, results, history, open_source)."""

    def ask_open(self) -> None:
        path = model_dialogs.ask_open_model(self, self.app_settings.last_dir())
        if path:
            self.app_settings.set_last_dir(str(Path(path).parent))
            self.open_source(path)

    def ask_open_folder(self) -> None:
        path = model_dialogs.ask_open_folder(self, self.app_settings.last_dir())
        if path:
            self.open_source(path)

    def fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        recent = self.app_settings.recent()
        for path in recent:
            act = self.recent_menu.addAction(Path(path).name or path)
            act.setToolTip(path)
            act.triggered.connect(lambda _=False, p=path: self.open_source(p))
        if not recent:
            self.recent_menu.addAction("(none yet)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.app_settings.clear_recent)

    def ask_load_recipe(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load recipe", self.app_settings.last_dir(),
                                              model_dialogs.RECIPE_FILTER)
        if path:
            self.load_recipe(path)

    def load_recipe(self, path: str) -> list[str]:
        from quantgui.core import UserError
        from quantgui.core import Recipe
        panels = self.optimize.ensure_techniques()
        try:  # checked against the engine's technique list: the GUI never imports torch
            recipe = Recipe.load(path, techniques=panels.specs)
        except UserError as exc:
            self.show_error("Could not load the recipe", str(exc))
            return [str(exc)]
        problems = self.optimize.set_recipe(recipe)
        if problems:
            self.show_error("Parts of the recipe were not applied", "\n".join(problems),
                            warning=True)
        return problems

    def ask_save_recipe(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save recipe", "recipe.json",
                                              model_dialogs.RECIPE_FILTER)
        if path:
            self.save_recipe(path)

    def save_recipe(self, path: str) -> bool:
        """Save the recipe; a folder problem or a full disk is a dialog with the CLI's line."""
        from quantgui.core import UserError
        try:
            self.current_recipe().save(path)
        except UserError as exc:
            self.show_error("Could not save the recipe", str(exc))
            return False
        self.phase.setText(f"Recipe saved to {path}.")
        return True

    def ask_export_results(self) -> None:
        if not self.history:
            self.show_error("Nothing to export", "Run a recipe first.", warning=True)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export results", "quantgui-session.csv",
                                              "CSV (*.csv);;JSON (*.json)")
        if path:
            self.export_results(path)

    def export_results(self, path: str) -> bool:
        from quantgui.core import UserError
        try:
            out = session.export(path, self.history)
        except UserError as exc:
            self.show_error("Could not export the results", str(exc))
            return False
        self.phase.setText(f"{len(self.history)} run(s) exported to {out}.")
        return True

    def ask_export_plots(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export plots", "quantgui-results.png",
                                              "PNG (*.png);;SVG (*.svg)")
        if path:
            export = self.results.export_svg if path.lower().endswith(".svg") else \
                self.results.export_png
            try:
                export(path)
            except Exception as exc:  # noqa: BLE001 - shown to the user, the app stays usable
                self.show_error("Could not export the plots", str(exc))

    def handle_drop(self, paths: list[str]) -> Optional[str]:
        """Open what was dropped; returns the message shown when it cannot be opened."""
        if not paths:
            return None
        path = paths[0]
        problem = model_dialogs.check_droppable(path)
        if problem:
            self.show_error("Cannot open the dropped item", problem)
            return problem
        if model_dialogs.dropped_kind(path) == "recipe":
            self.load_recipe(path)
        elif not self.open_source(path):
            return "busy"
        return None

    def dragEnterEvent(self, event: Any) -> None:
        if model_dialogs.paths_from_mime(event.mimeData()):
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        paths = model_dialogs.paths_from_mime(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self.handle_drop(paths)

