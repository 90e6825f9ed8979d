"""The main window: model dock, optimize dock, results in the middle, session history below.

Nothing here imports torch at module level: the window is shown first and the engine is
imported by the first job on the worker thread. All engine work goes through one
`EngineBridge`; slots here run on the GUI thread only.
"""

from __future__ import annotations

import dataclasses
import gc
from typing import Any, Optional

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (QApplication, QDockWidget, QFileDialog, QMainWindow, QProgressBar,
                               QVBoxLayout, QWidget)

from . import menus, model_dialogs, session
from .export_actions import ExportActions
from .file_actions import FileActions
from .model_panel import DATA_BUILTIN, DATA_FILE, DATA_NONE, DataChooser, ModelSummary
from .open_flow import OpenFlow
from .recipe_panel import OptimizePanel
from .recommend_actions import RecommendActions
from .session_model import Session
from .settings import AppSettings, apply_theme
from .status_area import ElidedLabel, WarningsButton
from .window_layout import DockLayout, scrolled
from .worker import EngineBridge, Job, JobError

_ORPHANS: list = []  # jobs still running after close timed out: never destroy a live QThread


def _load_job(source: str, task: Any, **kwargs: Any) -> tuple[Any, list[str]]:
    """Worker thread: import the engine (torch) and open the model."""
    from .worker import preload_torch_libraries
    preload_torch_libraries()
    from quantgui.core import DEFAULT_EXAMPLE, all_techniques, env, open_model
    all_techniques()
    # Imported here, off the GUI thread: the Run button and the end of a run need them, and a
    # first import (compiling the sources on a fresh checkout) would stall the event loop.
    from quantgui.core import Recipe, export_run, recommend_recipe, run_recipe  # noqa: F401
    if not source:
        source = f"example:{DEFAULT_EXAMPLE}"
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return open_model(source, task=task, **kwargs), env.cpu_capabilities()


def _run_job(loaded: Any, recipe: Any, options: Any, task: Any) -> Any:
    from quantgui.core import export_run, run_recipe  # noqa: F401 - export loaded off the GUI thread
    return run_recipe(loaded, recipe, options, task)  # a RunResult; keeps the variant for export


def _results_views() -> tuple[QWidget, QWidget]:
    try:
        from .plots import HistoryView, ResultsView
        return ResultsView(), HistoryView()
    except ImportError:
        return session.FallbackResults(), session.FallbackHistory()


class MainWindow(FileActions, QMainWindow):
    runStarted = Signal()
    runProgress = Signal(object)
    runFinished = Signal(object)   # RunResult
    runFailed = Signal(str)
    runCancelled = Signal()
    modelLoaded = Signal(object)   # LoadedModel
    modelFailed = Signal(str)

    def __init__(self, settings: Optional[QSettings] = None,
                 run_overrides: Optional[dict] = None) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("QuantGUI")
        from PySide6.QtGui import QIcon

        from quantgui.resources import resource_path
        self.setWindowIcon(QIcon(str(resource_path("icon.svg"))))
        self.setAcceptDrops(True)
        self.app_settings = AppSettings(settings)
        self.run_overrides = dict(run_overrides or {})
        self.bridge = EngineBridge(self)
        self.bridge.busyChanged.connect(self._on_busy)
        self.session = Session(self)  # the model open, the runs, the selection, saved or not
        self.last_error: Optional[str] = None
        self.dialog: Any = None  # the last dialog opened (tests inspect it)
        self._run: Optional[Job] = None
        self._load: Optional[Job] = None
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

    # -- opening models ---------------------------------------------------------------------
    def open_source(self, source: Optional[str] = None, arch: Optional[str] = None,
                    arch_kwargs: Optional[dict] = None, trust: bool = False,
                    input_shape: Optional[tuple] = None, data: Optional[str] = None,
                    **example: Any) -> bool:
        """Open a model (path, folder or 'example:NAME'; None: the default example) on the
        worker; `example` is open_model's example_input / input_dtype / example_text. Returns
        False when refused because engine work is running."""
        if self.bridge.busy:
            self.phase.setText("Busy: wait for the current work to finish, or cancel it.")
            return False
        self._load_args = dict(source=source, arch=arch, arch_kwargs=arch_kwargs, trust=trust,
                               input_shape=input_shape, data=data, **example)
        self.summary.set_loading(f"Opening {model_dialogs.describe_source(source or 'default example')}…")
        job = self.bridge.submit("load", _load_job, source or "", arch=arch,
                                 arch_kwargs=arch_kwargs, trust=trust or None,
                                 input_shape=input_shape, data=data, **example)
        job.progress.connect(self.show_progress)
        job.finished.connect(self._on_loaded)
        job.failed.connect(self._on_load_failed)
        job.cancelled.connect(self._on_load_cancelled)
        job.warned.connect(self.add_warning)
        self._load = job
        job.start()
        return True

    def _on_loaded(self, value: tuple) -> None:
        loaded, cpu = value
        # Freeze torch/engine/model objects: a full GC pass over them stalls the GUI ~100 ms.
        gc.freeze()
        self._fill_examples()
        self._no_data = False
        self.session.set_model(loaded, self._load_args)
        source = self._load_args.get("source") or loaded.info.source
        if not str(source).startswith("example:"):
            self.app_settings.add_recent(str(source))
        self.summary.show_model(loaded, cpu)
        self._show_data_mode()
        self.optimize.set_model(loaded)
        self.results.set_open_model(loaded.info.source)
        self.history_view.set_current_model(loaded.info.source)
        self.setWindowTitle(f"QuantGUI — {model_dialogs.describe_source(loaded.info.source)}")
        self.phase.setText(f"Ready: {loaded.info.name} ({loaded.info.format}).")
        self.open_flow.on_loaded()
        self.modelLoaded.emit(loaded)

    def _on_load_failed(self, err: JobError) -> None:
        self._fill_examples()
        self.optimize.ensure_techniques()
        self.optimize.refresh()
        # Trust, the architecture or the example input: a dialog asks (open_flow.py).
        waiting = self.open_flow.on_load_failed(err, dict(self._load_args))
        if waiting:
            self.phase.setText(waiting)
        else:
            self.show_error("Could not open the model", err.message, err.details)
            self.modelFailed.emit(err.message)
        if self.loaded is not None:
            self.summary.show_model(self.loaded, self._cpu())
        else:
            self.summary.set_loading(waiting or "No model open: " + err.message.splitlines()[0])
        self._show_data_mode()  # what is in effect, not what the failed load asked for

    def _on_load_cancelled(self) -> None:
        self.phase.setText("Opening cancelled.")
        self.open_flow.on_load_cancelled()
        if self.loaded is not None:
            self.summary.show_model(self.loaded, self._cpu())
        self._show_data_mode()

    def _fill_examples(self) -> None:
        if self._examples_filled:
            return
        from quantgui.core import EXAMPLES
        menus.fill_examples(self.examples_menu, [(n, s.description) for n, s in
                                                 EXAMPLES.items()], self.open_source)
        self._examples_filled = True

    def _on_data_chosen(self, mode: str) -> None:
        if self.loaded is None:
            self._show_data_mode()
            return
        args = dict(self.loaded_args)
        if mode == DATA_FILE:
            path, _ = QFileDialog.getOpenFileName(self, "Data file", self.app_settings.last_dir(),
                                                  model_dialogs.DATA_FILTER)
            if path and self.open_source(**{**args, "data": path}):
                self.data_chooser.set_mode(DATA_FILE, path)  # until the load says otherwise
                return
        elif mode == DATA_BUILTIN and (args.get("data") or self._no_data):
            if self.open_source(**{**args, "data": None}):
                return
        elif mode == DATA_NONE:
            self.use_no_data()
        self._show_data_mode()

    def _show_data_mode(self) -> None:
        """The data chooser shows the data really in use by the open model."""
        data = self.loaded_args.get("data") if self.loaded is not None else None
        mode = DATA_NONE if self._no_data else DATA_FILE if data else DATA_BUILTIN
        self.data_chooser.set_mode(mode, data or "", self.loaded)

    def use_no_data(self) -> None:
        """Drop the labels: accuracy is not measured, fidelity is the quality measure."""
        def unlabeled(ds: Any) -> Any:
            return None if ds is None else dataclasses.replace(ds, labels=None)
        self.session.set_model(dataclasses.replace(self.loaded, test=unlabeled(self.loaded.test),
                                                   train=unlabeled(self.loaded.train)))
        self._no_data = True
        self.summary.show_model(self.loaded, self._cpu())
        self.optimize.set_model(self.loaded)
        self._show_data_mode()

    def _cpu(self) -> list[str]:
        from quantgui.core import env
        return env.cpu_capabilities()

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
        return self.optimize.ensure_techniques().set_recipe(recipe)

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
        if self.bridge.busy or self.loaded is None or problem:
            self.phase.setText(problem or "Busy: wait for the current work to finish.")
            if problem:
                self.optimize.flag_problem()  # asked to run it: now it is an error
            return False
        recipe = recipe if recipe is not None else self.current_recipe()
        options = self.optimize.options(**self.run_overrides)
        if time_budget_s is not None:
            options.time_budget_s = float(time_budget_s)
        self._run_text = recipe.describe() + (f" ({note})" if note else "")
        self.results.start_run(self._run_text)
        job = self.bridge.submit("run", _run_job, self.loaded, recipe, options)
        job.progress.connect(self.show_progress)
        job.finished.connect(self._on_run_finished)
        job.failed.connect(self._on_run_failed)
        job.cancelled.connect(self._on_run_cancelled)
        job.warned.connect(self.add_warning)
        self._run = job
        self.optimize.set_running(True)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.phase.setText(f"Running {self._run_text}…")
        job.start()
        self.runStarted.emit()
        return True

    def _recipe_problem(self, recipe: Any) -> Optional[str]:
        """Why a recipe given in full (Measure longer, the demo) cannot run on the open model."""
        if self.loaded is None:
            return None
        from quantgui.core import preflight
        problems = preflight(self.loaded, recipe)
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
        if self.bridge.busy:
            self.bridge.cancel_all()
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

    def _on_run_finished(self, result: Any) -> None:
        text = self._run_text
        self._run_ended(f"Done: {text} — {result.summary()}")
        self.results.show_result(result)
        self.exports.add_run(text, result)
        self.runFinished.emit(result)

    def _on_run_failed(self, err: JobError) -> None:
        self._run_ended(f"Run failed: {err.message.splitlines()[0]}")
        self.results.abandon_run("The run failed; nothing was kept.")
        self.show_error("The run failed", err.message, err.details)
        self.runFailed.emit(err.message)

    def _on_run_cancelled(self) -> None:
        self._run_ended("Cancelled: nothing was kept.")
        self.results.abandon_run("Cancelled: nothing was kept.")
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
        busy = self.bridge.busy
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
        if self.bridge.busy:
            self.phase.setText("Cancelling the running work before closing…")
            if not self.bridge.shutdown(timeout_ms=60_000):
                for job in self.bridge.jobs():  # still running: keep it alive past the window
                    job.setParent(None)
                    _ORPHANS.append(job)
        self.app_settings.save_window(self)
        super().closeEvent(event)
