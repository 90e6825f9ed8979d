"""The Auto-tune view (a dock, Tools > Auto-tune…): the fastest recipe within a quality budget.

A request to the engine process ("tune", core/tune.py): every trial arrives as a "partial"
event and is drawn at once in the latency-vs-quality scatter, with the Pareto front (no other
trial is both faster and better), the budget line and the best so far (a star). Stop keeps the
best so far (the engine's "cancelled" answer carries the result). "Use this recipe" loads the
chosen recipe, budget included, into the recipe panel. The explanation is plain text (recipe
texts hold user-given glob patterns: through safe_text).

The Cluster setting (the Sweep view's, sweep_cluster.py: one setting for both) tunes on every
machine type of a Ray cluster instead, one tune per type on its own nodes; "Machine type"
chooses whose trials the scatter draws and whose result the explanation and "Use this recipe"
are."""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFormLayout, QHBoxLayout, QLabel, QPlainTextEdit,
                               QPushButton, QSpinBox, QVBoxLayout, QWidget)

from .budget_box import BudgetBox
from .plots import theme as th
from .plots.log_axis import log_x_plot
from .safe_text import printable
from .sweep_cluster import LOCAL, ClusterChoice, model_reference

#: Timing per trial at most (a run's budget is for one variant; a tune measures many).
MAX_BUDGET_S = 1.0


def quality_of(trial: Any) -> Optional[tuple[float, float]]:
    """(the budget's measured value, where its line is) of a trial's first criterion: the
    accuracy change in points (line at -max drop), or the cosine / agreement / SQNR (line at
    the floor). None when not measured (never a made-up number)."""
    check = None if trial.result is None else trial.result.budget
    if check is None or not check.criteria:
        return None
    c = check.criteria[0]
    if c.value is None or not math.isfinite(c.value) or not math.isfinite(c.bound):
        return None
    return c.value, (-c.bound if c.name == "max_accuracy_drop" else c.bound)


def latency_of(trial: Any) -> Optional[float]:
    ms = None if trial.result is None else trial.result.after.latency.median_ms
    return ms if ms is not None and math.isfinite(ms) and ms > 0 else None


def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both axes (lower latency, higher quality), by
    latency."""
    front, best = [], -math.inf
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if y > best:
            front.append((x, y))
            best = y
    return front


class TuneView(QWidget):
    started = Signal()
    trialAdded = Signal(object)     # TuneTrial
    finished = Signal(object)       # TuneResult (cancelled=True when stopped); a cluster
    #                                 tune's: ClusterTuneResult
    failed = Signal(str)

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.trials: list[Any] = []
        self.result: Any = None
        self._job: Any = None
        self.by_machine: dict[str, list] = {}  # a cluster tune's trials per machine type
        self.cluster_result: Any = None         # its ClusterTuneResult when done
        self.budget = BudgetBox()
        self.budget.kind.setCurrentIndex(1)  # an accuracy drop: 0.5 pt by default here
        self.budget.value.setValue(0.5)
        self.budget.setMinimumHeight(self.budget.sizeHint().height())  # never squeezed
        self.time_limit = QSpinBox()
        self.time_limit.setObjectName("tuneTimeLimit")
        self.time_limit.setRange(0, 24 * 60)
        self.time_limit.setSuffix(" min")
        self.time_limit.setSpecialValueText("none")
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.use_button = QPushButton("Use this recipe")
        for name, w in (("tuneStart", self.start_button), ("tuneStop", self.stop_button),
                        ("tuneUse", self.use_button)):
            w.setObjectName(name)
        self.start_button.setToolTip("Try recipes in order of expected payoff, falling back the "
                                     "most sensitive layers where a format misses the budget")
        self.stop_button.setToolTip("Stop now; the best recipe so far is kept")
        self.use_button.setToolTip("Load the chosen recipe (with its budget) into the panel")
        self.time_limit.setToolTip("Stop after this long with the best so far (none: when "
                                   "every candidate is tried)")
        self.status = QLabel("Set a budget and press Start.")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.explanation = QPlainTextEdit()
        self.explanation.setObjectName("tuneExplanation")
        self.explanation.setReadOnly(True)
        self.explanation.setMinimumHeight(48)
        self.explanation.setPlaceholderText("Why the chosen recipe: which layers were kept in "
                                            "higher precision and what each choice bought.")
        self.plot = log_x_plot()  # trials span 10x and more in latency
        self.plot.setMinimumHeight(200)
        self.plot.setLabel("bottom", "latency after (ms, median; log scale)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # points, cosines: as they are
        self.key = QLabel("")
        self.key.setWordWrap(True)
        self.key.setTextFormat(Qt.TextFormat.PlainText)
        self.cluster = ClusterChoice(win.app_settings, name="tune")
        self.machine = QComboBox()
        self.machine.setObjectName("tuneMachine")
        self.machine.setToolTip("Whose trials the scatter shows: one tune per machine type")
        self.machine.currentIndexChanged.connect(lambda _i: self._show_machine())
        form = QFormLayout()
        form.addRow("Time limit:", self.time_limit)
        form.addRow("Cluster:", self.cluster)
        form.addRow("Machine type:", self.machine)
        self.form = form
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button):
            buttons.addWidget(b)
        controls = QWidget()
        controls.setMaximumWidth(320)
        side = QVBoxLayout(controls)
        side.setContentsMargins(0, 0, 0, 0)
        side.addWidget(self.budget)
        side.addLayout(form)
        side.addLayout(buttons)
        side.addWidget(self.use_button)
        side.addWidget(self.status)
        side.addWidget(self.explanation, 1)
        right = QVBoxLayout()
        right.addWidget(self.key)
        right.addWidget(self.plot, 1)
        lay = QHBoxLayout(self)
        lay.addWidget(controls)
        lay.addLayout(right, 1)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.use_button.clicked.connect(self.use)
        self._theme = th.current()
        th.ThemeWatcher(self, self._apply_theme)
        self._sync()

    # -- running --------------------------------------------------------------------------
    def _sync(self) -> None:
        running = self._job is not None
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.use_button.setEnabled(not running and self.result is not None
                                   and self.result.recipe is not None)
        self.budget.setEnabled(not running)
        self.cluster.setEnabled(not running)
        self.form.setRowVisible(self.machine, self.machine.count() > 0)

    def start(self) -> bool:
        win = self.win
        if win.engine.busy or win.loaded is None:
            self.status.setText("Busy: wait for the current work to finish." if win.engine.busy
                                else "Open a model first.")
            return False
        budget = self.budget.budget()
        options = win.optimize.options(**{
            "time_budget_s": min(MAX_BUDGET_S, win.optimize.budget.value()),
            **win.run_overrides})
        limit = self.time_limit.value() * 60 or None
        try:
            cluster = self.cluster.value()
            model = model_reference(win, "tune") if cluster != LOCAL else None
        except ValueError as exc:
            self.status.setText(str(exc))
            return False
        self.trials, self.result = [], None
        self.by_machine, self.cluster_result = {}, None
        self.machine.clear()
        self.explanation.setPlainText("")
        req = win.engine.tune(win.loaded.model_id, None if budget is None else budget.to_json(),
                              options, limit, cluster=cluster, model=model)
        req.partial.connect(self._on_partial)
        req.progress.connect(self._on_progress)
        req.finished.connect(lambda value: self._done(value, "finished"))
        req.cancelled.connect(lambda _how: self._done(req.cancel_data, "stopped"))
        req.failed.connect(self._on_failed)
        req.warned.connect(win.add_warning)
        self._job = req
        self.status.setText("Auto-tune: measuring the first candidate…")
        self._redraw()
        self._sync()
        win.sync_actions()
        req.start()
        self.started.emit()
        return True

    def stop(self) -> None:
        if self._job is not None:
            self.status.setText("Stopping: the best so far is kept…")
            self._job.cancel()

    def _on_progress(self, batch: list) -> None:
        for p in batch:
            if p.phase == "tune" and p.message:
                self.status.setText(printable(f"Auto-tune: trial {len(self.trials) + 1}: "
                                              f"{p.message}", newlines=False))

    def _on_partial(self, value: dict) -> None:
        from quantgui.core.results.tune import TuneResult, TuneTrial
        t = TuneTrial.from_json(value.get("trial") or {})
        machine = value.get("machine")
        if isinstance(machine, str):  # a cluster tune: this type's trials
            self._add_machine(machine).append(t)
            if machine != self.machine.currentData():  # drawn when that type is chosen
                self.trialAdded.emit(t)
                return
            self.trials = list(self.by_machine[machine])
        else:
            self.trials.append(t)
        if t.trial.result is not None and machine is None:  # measured here, kept here
            self.win.exports.add_run(t.trial.recipe.describe(), t.trial.result)
        best = TuneResult(self.budget.budget() or _no_budget(), list(self.trials)).best
        self.status.setText(printable(
            f"{len(self.trials)} trials; best so far: "
            + (best.trial.recipe.describe() if best else "none yet"), newlines=False))
        self._redraw()
        self.trialAdded.emit(t)

    def _done(self, value: Any, how: str) -> None:
        from quantgui.core.results.tune import TuneResult
        self._job = None
        if (value or {}).get("cluster_tune"):
            self._cluster_done(value["cluster_tune"], how)
            return
        data = (value or {}).get("tune")
        if data:
            self.result = TuneResult.from_json(data)
            self.trials = list(self.result.trials)
            self.win.session.evicted(value.get("evicted") or [])
        else:  # stopped before any trial ended
            self.result = TuneResult(self.budget.budget() or _no_budget(), list(self.trials),
                                     cancelled=True, stopped="cancelled")
        r = self.result
        best = r.best
        self.status.setText(printable(
            ("Stopped: " if how == "stopped" else "Finished: ") + f"{len(r.trials)} trials; "
            + (f"best: {best.trial.recipe.describe()}" if best else "keep the original"),
            newlines=False))
        lines = r.lines() if r.best is not None else []
        self.explanation.setPlainText(printable("\n".join(
            [r.message, *lines, *(f"note: {n}" for n in r.notes)])))
        self._redraw()
        self._sync()
        self.win.sync_actions()
        self.finished.emit(r)

    # -- a cluster tune: one result per machine type ------------------------------------------
    def _add_machine(self, machine: str) -> list:
        if machine not in self.by_machine:
            self.by_machine[machine] = []
            self.machine.addItem(printable(machine, newlines=False), machine)
            self.machine.setItemData(self.machine.count() - 1, printable(machine),
                                     Qt.ItemDataRole.ToolTipRole)  # long CPU names elide
            self._sync()
        return self.by_machine[machine]

    def _cluster_done(self, data: dict, how: str) -> None:
        from quantgui.core.results.cluster_tune import ClusterTuneResult
        self.cluster_result = ClusterTuneResult.from_json(data)
        for entry in self.cluster_result.types:
            trials = self._add_machine(entry.machine)
            if entry.result is not None:
                trials[:] = entry.result.trials
        self._show_machine()
        n = len(self.cluster_result.types)
        self.status.setText(printable(
            ("Stopped: " if how == "stopped" else "Finished: ")
            + f"{n} machine type{'s' if n != 1 else ''}"
            + (f"; {self.cluster_result.error}" if self.cluster_result.error else ""),
            newlines=False))
        self._sync()
        self.win.sync_actions()
        self.finished.emit(self.cluster_result)

    def _show_machine(self) -> None:
        """The chosen machine type's trials in the scatter; when done its result too."""
        machine = self.machine.currentData()
        if machine is None:
            return
        self.trials = list(self.by_machine.get(machine, []))
        entry = None if self.cluster_result is None else next(
            (e for e in self.cluster_result.types if e.machine == machine), None)
        self.result = None if entry is None else entry.result
        if entry is not None:
            env = entry.environment
            lines = [f"{entry.machine}", f"CPU: {env.get('cpu', '?')}, flags {entry.flags}, "
                     f"{env.get('cores', '?')} cores, torch {env.get('torch', '?')} (node "
                     f"{entry.node or '?'}, worker pid {entry.pid or '?'})"]
            if entry.error:
                lines.append(f"error: {entry.error}")
            r = entry.result
            if r is not None:
                lines += [r.message, *(r.lines() if r.best is not None else []),
                          *(f"note: {n}" for n in r.notes)]
            self.explanation.setPlainText(printable("\n".join(lines)))
        self._redraw()
        self._sync()

    def _on_failed(self, err: Any) -> None:
        self._job = None
        self.status.setText(printable(f"Auto-tune failed: {err.message}", newlines=False))
        self._sync()
        self.win.sync_actions()
        self.failed.emit(err.message)

    def use(self) -> None:
        if self.result is None or self.result.recipe is None:
            return
        problems = self.win.set_recipe(self.result.recipe)
        self.status.setText(printable("Loaded into the recipe panel: "
                                      + self.result.recipe.describe()
                                      + ("; not applied: " + "; ".join(problems)
                                         if problems else ""), newlines=False))

    # -- drawing --------------------------------------------------------------------------
    def _apply_theme(self, theme: Any) -> None:
        self._theme = theme
        self._redraw()

    def points(self) -> list[tuple[int, float, float]]:
        """(trial index, latency ms, quality) of every trial that has both."""
        out = []
        for i, t in enumerate(self.trials):
            q, ms = quality_of(t.trial), latency_of(t.trial)
            if q is not None and ms is not None:
                out.append((i, ms, q[0]))
        return out

    def _redraw(self) -> None:
        theme = self._theme
        plot = self.plot
        plot.clear()
        th.style_plot(plot, theme)
        budget = self.budget.budget()
        metric = "accuracy change (pt)" if budget is None or budget.max_accuracy_drop \
            is not None else next(iter(budget.to_json())).replace("min_", "")
        plot.setLabel("left", metric)
        pts = self.points()
        from quantgui.core.results.recommendation import pick
        chosen = pick([t.trial for t in self.trials])
        best = next((i for i, t in enumerate(self.trials) if t.trial is chosen), None)
        meets = [(x, y) for i, x, y in pts if self.trials[i].trial.meets_bound]
        fails = [(x, y) for i, x, y in pts if not self.trials[i].trial.meets_bound]
        for group, brush, symbol in ((meets, theme.good, "o"), (fails, theme.bad, "x")):
            if group:
                plot.plot([p[0] for p in group], [p[1] for p in group], pen=None,
                          symbol=symbol, symbolSize=9, symbolBrush=pg.mkBrush(brush),
                          symbolPen=pg.mkPen(brush))
        front = pareto([(x, y) for _, x, y in pts])
        if len(front) > 1:
            plot.plot([p[0] for p in front], [p[1] for p in front],
                      pen=pg.mkPen(theme.pareto, width=1, style=Qt.PenStyle.DashLine))
        line = next((quality_of(t.trial)[1] for t in self.trials if quality_of(t.trial)), None)
        if line is not None:
            plot.addItem(pg.InfiniteLine(pos=line, angle=0, pen=pg.mkPen(
                theme.bad, width=1, style=Qt.PenStyle.DotLine)))
        if self.trials and self.trials[0].trial.result is not None:
            before = self.trials[0].trial.result.before.latency.median_ms
            if math.isfinite(before) and before > 0:
                plot.addItem(pg.InfiniteLine(pos=math.log10(before), angle=90, pen=pg.mkPen(
                    theme.before, width=1, style=Qt.PenStyle.DashLine)))
        star = next(((x, y) for i, x, y in pts if i == best), None)
        self.best_point = star
        if star is not None:
            plot.plot([star[0]], [star[1]], pen=None, symbol="star", symbolSize=20,
                      symbolBrush=pg.mkBrush(theme.good), symbolPen=pg.mkPen(theme.foreground))
        self.key.setText(
            "o meets the budget · x misses it · ★ best so far · dashed: Pareto front · "
            "vertical: the original's latency · dotted: the budget"
            + (f"   ({budget.describe()})" if budget is not None else ""))


def _no_budget() -> Any:
    from quantgui.core.budget import QualityBudget
    return QualityBudget()


def add_tune_view(win: Any) -> None:
    """Tools > Auto-tune…; the view and its dock are built on first use (not at launch: the
    window shows sooner) and set as `win.tune_view`, with a View-menu toggle from then on."""
    from .tool_dock import add_tool_view
    add_tool_view(win, name="tune", title="Auto-tune",
                  action_text="Auto-tune within a quality budget…",
                  tooltip="The fastest recipe within a quality budget: candidates in order of "
                  "expected payoff, the most sensitive layers kept where a format misses it",
                  make=TuneView, attr="tune_view", height=460)  # room for the scatter
