"""The main window: model dock, optimize dock, results in the middle, session history below.

The GUI process never imports torch: all engine work is a request to the engine process
(`EngineClient`, engine_client.py), answered with typed records' JSON; the window shows first
and the engine starts behind it. What the session holds (the open model, the runs, the
selection, saved or not) is the one `Session` (session_model.py). Slots run on the GUI thread.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (QApplication, QDockWidget, QMainWindow, QProgressBar,
                               QVBoxLayout, QWidget)

from . import menus, model_dialogs, session
from .engine_client import CRASHED, EngineClient, EngineError
from .export_actions import ExportActions
from .file_actions import FileActions
from .data_view import DataView
from .model_actions import ModelActions
from .model_panel import DataChooser, ModelSummary
from .open_flow import OpenFlow
from .recipe_panel import OptimizePanel
from .recommend_actions import RecommendActions
from .session_model import Session
from .settings import AppSettings, apply_theme
from .status_area import ElidedLabel, WarningsButton
from .window_layout import DockLayout, TabBarTips, scrolled


def _results_views() -> tuple[QWidget, QWidget]:
    try:
        from .plots import HistoryView, ResultsView
        return ResultsView(), HistoryView()
    except ImportError:
        return session.FallbackResults(), session.FallbackHistory()


class MainWindow(ModelActions, FileActions, QMainWindow):
    runStarted = Signal()
    runProgress = Signal(object)
    runFinished = Signal(object)   # RunResult
    runFailed = Signal(str)
    runCancelled = Signal()
    modelLoaded = Signal(object)   # LoadedModel
    modelFailed = Signal(str)

    def __init__(self, settings: Optional[QSettings] = None,
                 run_overrides: Optional[dict] = None,
                 engine: Optional[EngineClient] = None) -> None:
        """`engine`: an engine client to share (tests: one engine process for many windows;
        the window then leaves it running when it closes), else the window starts its own."""
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("QuantGUI")
        from PySide6.QtGui import QIcon

        from quantgui.resources import resource_path
        self.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
        self.setAcceptDrops(True)
        self.app_settings = AppSettings(settings)
        self.run_overrides = dict(run_overrides or {})
        self._own_engine = engine is None
        self.engine = EngineClient(self) if engine is None else engine
        self._engine_slots = [(self.engine.busyChanged, self._on_busy),
                              (self.engine.ready, self._on_engine_ready),
                              (self.engine.startFailed, self._on_engine_failed),
                              (self.engine.log, self.add_warning),
                              (self.engine.restarted, self._on_engine_restarted),
                              (self.engine.reopened, self._on_reopened)]
        for sig, slot in self._engine_slots:
            sig.connect(slot)
        self.session = Session(self)  # the model open, the runs, the selection, saved or not
        self.last_error: Optional[str] = None
        self.dialog: Any = None  # the last dialog opened (tests inspect it)
        self._run: Any = None     # the run request in flight
        self._load: Any = None    # the open request in flight
        self._load_args: dict = {}   # what the load in flight (or the last one) was given
        self._no_data = False        # "None — fidelity only" chosen for the open model
        self._examples_filled = False

        self.results, self.history_view = _results_views()
        self.results.setObjectName("resultsView")
        self.history_view.setObjectName("historyView")
        self.history_view.variantSelected.connect(self.results.show_result)
        self.history_view.rowSelected.connect(self.session.select)
        self.session.runAdded.connect(self._on_run_added)
        self.session.runsReplaced.connect(lambda: self.history_view.load(
            [(r.result, r.label) for r in self.session.runs]))
        if hasattr(self.results, "measureLongerRequested"):
            self.results.measureLongerRequested.connect(self.measure_longer)
        self.setCentralWidget(self.results)

        self.summary = ModelSummary()
        self.data_chooser = DataChooser()
        self.data_chooser.chosen.connect(self._on_data_chosen)
        model_area = QWidget()
        lay = QVBoxLayout(model_area)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.summary)
        lay.addWidget(self.data_chooser)
        self.optimize = OptimizePanel()
        lay.addWidget(self.optimize.measure_box)
        lay.addStretch(1)
        self.optimize.runRequested.connect(self.run)
        self.optimize.cancelRequested.connect(self.cancel)
        self.optimize.recipeChanged.connect(self.sync_actions)
        self.exports, self.suggest = ExportActions(self), RecommendActions(self)
        self.open_flow = OpenFlow(self)
        self.actions_by_name = menus.build(self)
        self._dock("modelDock", "Model", scrolled(model_area, 220),
                   Qt.DockWidgetArea.LeftDockWidgetArea)
        self._dock("optimizeDock", "Optimize", self.optimize, Qt.DockWidgetArea.RightDockWidgetArea)
        self._dock("historyDock", "Session history", self.history_view,
                   Qt.DockWidgetArea.BottomDockWidgetArea)
        self.data_view = DataView.docked(self)  # a tab beside the history
        self.tab_tips = TabBarTips(self)
        from .sweep_view import add_sweep_view  # Tools > Sweep…: its own dock
        self.sweep_view = add_sweep_view(self)
        from .sensitivity_view import add_sensitivity_action  # Tools > Layer sensitivity…
        add_sensitivity_action(self)  # the view is built on first use
        from .tune_view import add_tune_view  # Tools > Auto-tune…: its own dock
        add_tune_view(self)  # sets self.tune_view (built on first use)
        self.examples_menu.addAction("(the engine is starting…)").setEnabled(False)

        self.phase = ElidedLabel("Starting the engine…")
        self.phase.setObjectName("phaseLabel")
        self.warnings_button = WarningsButton()
        self.progress = QProgressBar()
        self.progress.setObjectName("progressBar")
        self.progress.setMaximumWidth(260)
        self.progress.setTextVisible(True)
        self.progress.setToolTip("Progress of the current phase")
        self.progress.hide()
        self.statusBar().addWidget(self.phase, 1)
        self.statusBar().addPermanentWidget(self.warnings_button)
        self.statusBar().addPermanentWidget(self.progress)

        # Side docks take the full height; the history sits under the results only.
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.resize(1440, 900)
        docks = [self.findChild(QDockWidget, n) for n in ("modelDock", "optimizeDock",
                                                          "historyDock")]
        self.dock_layout = DockLayout(self, *docks)
        self.resizeDocks(docks[2:], [250], Qt.Orientation.Vertical)
        self.dock_layout.fresh = not self.app_settings.restore_window(self)
        self.sync_actions()
        if self.engine.info:
            self._on_engine_ready(self.engine.info)
        else:  # torch loads in the engine process while the window shows
            self.engine.start()

    # -- the session (session_model.Session is the one record) --------------------------------
    @property
    def loaded(self) -> Any:
        """The open model."""
        return self.session.model

    @property
    def loaded_args(self) -> dict:
        """What the open model was opened with."""
        return self.session.model_args

    @property
    def history(self) -> list[tuple[str, Any]]:
        """(label, RunResult) per run, in run order."""
        return self.session.history

    def _on_run_added(self, row: int) -> None:
        run = self.session.runs[row]
        self.history_view.add(run.result, run.label)

    def _dock(self, name: str, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> None:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        dock.setToolTip(title)
        self.addDockWidget(area, dock)
        self.view_menu.addAction(dock.toggleViewAction())

    def grab(self, *args: Any) -> Any:
        """The window as a pixmap with every plot painted (plots waiting for their turn to
        paint, plots/turns.py, would be blank)."""
        try:
            from .plots.turns import release_all
        except ImportError:  # no plots (the text stand-in): nothing is held
            return super().grab(*args)
        release_all()
        return super().grab(*args)

    def show_about(self) -> None:
        from .about import show_about
        self.dialog = show_about(self)

    def show_error(self, title: str, message: str, details: str = "",
                   warning: bool = False) -> None:
        self.last_error = message
        self.phase.setText(message.splitlines()[0] if message else title)
        self.show_dialog(model_dialogs.error_box(self, title, message, details, warning))

    def show_dialog(self, dialog: Any) -> None:
        self.dialog = dialog
        dialog.finished.connect(dialog.deleteLater)
        if not dialog.isVisible():
            dialog.open()

    # -- the API tests and the demo use -----------------------------------------------------
    def current_recipe(self) -> Any:
        return self.optimize.recipe()

    def set_technique_enabled(self, name: str, on: bool = True) -> None:
        self.optimize.ensure_techniques().panel(name).set_enabled(on)

    def set_param(self, name: str, field: str, value: Any) -> None:
        self.optimize.ensure_techniques().panel(name).set_value(field, value)

    def set_recipe(self, recipe: Any) -> list[str]:
        return self.optimize.set_recipe(recipe)

    @property
    def running(self) -> bool:
        return self._run is not None

    def run(self, recipe: Any = None, time_budget_s: Optional[float] = None,
            note: str = "") -> bool:
        """Start a run of the current recipe (or `recipe`, with `time_budget_s`: Measure
        longer); False (and nothing happens) when refused. `note` joins the recipe in the
        history (the demo's "expected: not faster on this CPU")."""
        problem = self.optimize.problem_text() if recipe is None else \
            self._recipe_problem(recipe)
        if self.engine.busy or self.loaded is None or problem:
            self.phase.setText(problem or "Busy: wait for the current work to finish.")
            if problem:
                self.optimize.flag_problem()  # asked to run it: now it is an error
            return False
        recipe = recipe if recipe is not None else self.current_recipe()
        options = self.optimize.options(**self.run_overrides)
        if time_budget_s is not None:
            options["time_budget_s"] = float(time_budget_s)
        self._run_text = recipe.describe() + (f" ({note})" if note else "")
        self.results.start_run(self._run_text)
        req = self.engine.submit("run", {"model_id": self.loaded.model_id,
                                         "recipe": recipe.to_json(), "options": options,
                                         "label": self._run_text})
        req.progress.connect(self.show_progress)
        req.finished.connect(self._on_run_finished)
        req.failed.connect(self._on_run_failed)
        req.cancelled.connect(self._on_run_cancelled)
        req.warned.connect(self.add_warning)
        self._run = req
        self.optimize.set_running(True)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.phase.setText(f"Running {self._run_text}…")
        req.start()
        self.runStarted.emit()
        return True

    def _recipe_problem(self, recipe: Any) -> Optional[str]:
        """Why a recipe given in full (Measure longer, the demo) cannot run on the open model."""
        if self.loaded is None:
            return None
        from quantgui.core import preflight
        m = self.loaded
        problems = preflight(m.info, recipe, train=m.train, test=m.test)
        return problems[0].text() if problems else None

    def measure_longer(self, result: Any, seconds: float) -> bool:
        """Run an inconclusive result's recipe again on the same model with a longer budget."""
        source = result.source
        if self.loaded is None or (source and source != self.loaded.info.source):
            self.phase.setText(f"Open {source or 'the model'} again to measure it longer.")
            return False
        problem = self._recipe_problem(result.recipe)
        if problem:
            self.phase.setText(f"Cannot measure longer: {problem}")
            return False
        return self.run(result.recipe, seconds)

    def cancel(self) -> None:
        if self.engine.busy:
            self.engine.cancel_all()
            self.phase.setText("Cancelling…")
            self.optimize.cancel_button.setEnabled(False)

    # -- run slots --------------------------------------------------------------------------
    def show_progress(self, batch: list) -> None:
        running = self._run is not None
        for p in batch:
            if running:
                self.results.on_progress(p)
                self.runProgress.emit(p)
        last = batch[-1]
        self.phase.setText(last.describe())
        if last.total:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * (last.fraction or 0)))
            self.progress.setFormat(f"{last.done}/{last.total}")
        else:
            self.progress.setRange(0, 0)
        self.progress.show()

    def _run_ended(self, text: str) -> None:
        self._run = None
        self.optimize.set_running(False)
        self.progress.hide()
        self.phase.setText(text)
        self.sync_actions()

    def _on_run_finished(self, value: dict) -> None:
        from quantgui.core import RunResult
        result = RunResult.from_json(value["result"])
        text = self._run_text
        self.session.evicted(value.get("evicted") or [])
        self._run_ended(f"Done: {text} — {result.summary()}")
        self.results.show_result(result)
        self.exports.add_run(text, result)
        self.runFinished.emit(result)

    def _on_run_failed(self, err: EngineError) -> None:
        self._run_ended(f"Run failed: {err.message.splitlines()[0]}")
        self.results.abandon_run("The run failed; nothing was kept.")
        title = "The engine stopped during the run" if err.kind == CRASHED else "The run failed"
        self.show_error(title, err.message, err.details)
        self.runFailed.emit(err.message)

    def _on_run_cancelled(self, how: str) -> None:
        text = "Cancelled: nothing was kept." if how == "cancelled" else \
            f"Cancelled: nothing was kept ({how.split('(', 1)[-1].rstrip(')')})."
        self._run_ended(text)
        self.results.abandon_run(text)
        self.runCancelled.emit()

    def add_warning(self, text: str) -> None:
        # Counted beside the phase line, never over it: the progress text stays readable.
        self.warnings_button.add(text)

    def _on_busy(self, busy: bool) -> None:
        self.sync_actions()
        if hasattr(self.results, "set_measure_enabled"):
            self.results.set_measure_enabled(not busy)
        if not busy and self._run is None:
            self.progress.hide()

    def sync_actions(self) -> None:
        busy = self.engine.busy
        a = self.actions_by_name
        a["run"].setEnabled(not busy and self.optimize.run_button.isEnabled())
        a["cancel"].setEnabled(busy)
        for key in ("open", "open_folder", "load_recipe"):
            a[key].setEnabled(not busy)
        problem = self.open_flow.example_problem()
        a["example_input"].setEnabled(not busy and problem is None)
        a["example_input"].setToolTip(problem or a["example_input"].statusTip())
        self.examples_menu.setEnabled(not busy)
        self.recent_menu.setEnabled(not busy)
        a["export"].setEnabled(bool(self.history))
        self.exports.sync()  # export, project and suggest actions

    # -- window -----------------------------------------------------------------------------
    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()
        self.actions_by_name["fullscreen"].setChecked(self.isFullScreen())

    def set_theme(self, theme: str) -> None:
        self.app_settings.set_theme(theme)
        apply_theme(QApplication.instance(), theme)

    def closeEvent(self, event: Any) -> None:
        if self._own_engine:
            self.engine.shutdown()  # cancels what runs, asks the engine to exit, kills it if not
        else:
            for sig, slot in self._engine_slots:
                sig.disconnect(slot)
            self.engine.release()  # the engine stays, holding nothing of this window
        self.app_settings.save_window(self)
        super().closeEvent(event)
