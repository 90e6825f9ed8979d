"""The Sweep view (a dock, Tools > Sweep…): recipes x batch sizes x thread counts on the open
model, latency and throughput vs batch as the points arrive, crossovers marked, the table
exportable as CSV, JSON or a report (sweep_export.py). Where it measures is the Cluster setting
(sweep_cluster.py); a point of the table can be profiled per layer (profile_chart.py).

The sweep is a request to the engine process, like a run (`win.engine.submit("sweep", ...)`):
each measured point arrives as a "partial" event; the result is the SweepResult (crossovers,
one recommendation per machine type). Cancel keeps the points measured (the "cancelled" answer
carries no result: the view keeps the points it already has)."""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QListWidget, QListWidgetItem, QPushButton, QSplitter, QTabWidget,
                               QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from . import sweep_export
from .plots import theme as th
from .plots.log_axis import log_x_plot
from .profile_chart import ProfileChart
from .safe_text import html_text, printable
from .sweep_cluster import LOCAL, ClusterChoice

#: Timing per point at most: a sweep has many points (a run's budget is for one).
MAX_BUDGET_S = 0.5
#: Line styles per thread count (colour is the recipe's).
_DASHES = [Qt.PenStyle.SolidLine, Qt.PenStyle.DashLine, Qt.PenStyle.DotLine,
           Qt.PenStyle.DashDotLine]
_PALETTE = ["#0072B2", "#009E73", "#CC79A7", "#D55E00", "#56B4E9", "#F0E442"]


def parse_counts(text: str, what: str) -> list[int]:
    values = []
    for part in text.replace(" ", "").split(","):
        if not part.isdigit() or int(part) < 1:
            raise ValueError(f"{what}: whole numbers from 1 separated by commas")
        values.append(int(part))
    return values


class SweepView(QWidget):
    started = Signal()
    pointAdded = Signal(object)     # SweepPoint
    finished = Signal(object)       # SweepResult (cancelled=True when cut short)
    failed = Signal(str)
    reported = Signal(dict)         # the engine's answer to sweep_report

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.points: list[Any] = []
        self.result: Any = None
        self._job: Any = None
        self.recipes = QListWidget()
        self.recipes.setObjectName("sweepRecipes")
        self.recipes.setMaximumHeight(90)
        self.batches = QLineEdit("1,8,32")
        self.threads = QLineEdit("1")
        self.run_button = QPushButton("Run sweep")
        self.cancel_button = QPushButton("Cancel")
        self.csv_button = QPushButton("Export CSV…")
        self.json_button = QPushButton("Export JSON…")
        self.report_button = QPushButton("Export report…")
        self.cluster = ClusterChoice(win.app_settings)
        self.profile = ProfileChart(win)
        self.swept: dict[str, Any] = {}  # recipe name -> Recipe of the sweep shown
        tips = {
            self.recipes: "The recipes to time: the current one and those of the session "
                          "history; tick the ones to sweep",
            self.batches: "Batch sizes to time, separated by commas (e.g. 1,8,32,128)",
            self.threads: "torch thread counts to time, separated by commas (e.g. 1,2,4)",
            self.run_button: "Time every recipe at every batch size and thread count, before "
                             "vs after, with the same interleaved timer as a run",
            self.cancel_button: "Stop the sweep; the points measured so far are kept",
            self.csv_button: "Save the table as CSV (one row per point)",
            self.json_button: "Save the whole sweep as JSON (points, crossovers, "
                              "recommendation)",
            self.report_button: "Write report.html and report.md (tables, crossovers, "
                                "recommendation per machine type, these plots) and sweep.json "
                                "into a new folder",
        }
        for widget, tip in tips.items():
            widget.setToolTip(tip)
        for name, widget in (("sweepBatches", self.batches), ("sweepThreads", self.threads),
                             ("sweepRun", self.run_button), ("sweepCancel", self.cancel_button),
                             ("sweepCsv", self.csv_button), ("sweepJson", self.json_button),
                             ("sweepReport", self.report_button)):
            widget.setObjectName(name)
        self.status = QLabel("Choose recipes, batch sizes and thread counts, then Run sweep.")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        self.crossover = QLabel("")
        self.crossover.setTextFormat(Qt.TextFormat.PlainText)
        self.crossover.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Recipes", self.recipes)
        form.addRow("Batch sizes", self.batches)
        form.addRow("Threads", self.threads)
        form.addRow("Cluster", self.cluster)
        buttons = QHBoxLayout()
        for b in (self.run_button, self.cancel_button):
            buttons.addWidget(b)
        exports = QHBoxLayout()
        for b in (self.csv_button, self.json_button, self.report_button):
            exports.addWidget(b)
        self.latency_plot, self.throughput_plot = log_x_plot(), log_x_plot()
        for plot, label in ((self.latency_plot, "latency (ms)"),
                            (self.throughput_plot, "throughput (samples/s)")):
            plot.setLabel("bottom", "batch size")
            plot.setLabel("left", label)
            plot.setMinimumHeight(160)
        # One key for both plots (they share lines), above them: a legend inside would hide
        # the small batches' points.
        self.key = QLabel("")
        self.key.setTextFormat(Qt.TextFormat.RichText)
        self.key.setWordWrap(True)
        plots = QSplitter(Qt.Orientation.Horizontal)
        plots.addWidget(self.latency_plot)
        plots.addWidget(self.throughput_plot)
        self.table = QTableWidget(0, 8)
        self.table.setHorizontalHeaderLabels(["recipe", "threads", "batch", "before ms",
                                              "after ms", "speedup", "95% CI", "after /s"])
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        body = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_lay = QVBoxLayout(top)
        top_lay.setContentsMargins(0, 0, 0, 0)
        top_lay.addWidget(self.key)
        top_lay.addWidget(plots, 1)
        # The per-layer chart on its own tab: beside the two curves it would be too narrow.
        self.tabs = QTabWidget()
        self.tabs.setObjectName("sweepPlots")
        self.tabs.addTab(top, "Latency and throughput")
        self.tabs.addTab(self.profile, "Per-layer profile")
        self.profile.started.connect(lambda: self.tabs.setCurrentWidget(self.profile))
        body.addWidget(self.tabs)
        body.addWidget(self.table)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 1)
        controls = QWidget()
        controls.setMaximumWidth(340)
        side = QVBoxLayout(controls)
        side.setContentsMargins(0, 0, 0, 0)
        side.addLayout(form)
        side.addLayout(buttons)
        side.addLayout(exports)
        side.addLayout(self.profile.buttons)
        side.addWidget(self.status)
        side.addWidget(self.crossover)
        side.addStretch(1)
        lay = QHBoxLayout(self)
        lay.addWidget(controls)
        lay.addWidget(body, 1)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.csv_button.clicked.connect(lambda: sweep_export.ask_export(self, "csv"))
        self.json_button.clicked.connect(lambda: sweep_export.ask_export(self, "json"))
        self.report_button.clicked.connect(lambda: sweep_export.ask_export(self, "report"))
        self.profile.profile_button.clicked.connect(self.start_profile)
        for signal in (self.profile.started, self.profile.profiled, self.profile.failed):
            signal.connect(self._sync)
        self._theme = th.current()
        th.ThemeWatcher(self, self._apply_theme)
        self._sync()

    # -- recipes: the current one and the session history's -------------------------------
    def refresh_recipes(self) -> None:
        chosen = {self.recipes.item(i).text() for i in range(self.recipes.count())
                  if self.recipes.item(i).checkState() == Qt.CheckState.Checked}
        found: dict[str, Any] = {}
        try:
            current = self.win.current_recipe()
        except Exception:  # the panels are still being built  # noqa: BLE001
            current = None
        if current is not None and current.steps:
            found[current.describe()] = current
        for _text, result in getattr(self.win, "history", []):
            recipe = getattr(result, "recipe", None)
            if recipe is not None and recipe.steps:
                found.setdefault(recipe.describe(), recipe)
        self.recipes.clear()
        for i, (text, recipe) in enumerate(found.items()):
            item = QListWidgetItem(printable(text, newlines=False))
            item.setData(Qt.ItemDataRole.UserRole, recipe)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = text in chosen or (not chosen and i == 0)
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.recipes.addItem(item)
        self._sync()

    def chosen_recipes(self) -> list[Any]:
        return [self.recipes.item(i).data(Qt.ItemDataRole.UserRole)
                for i in range(self.recipes.count())
                if self.recipes.item(i).checkState() == Qt.CheckState.Checked]

    # -- running --------------------------------------------------------------------------
    def _sync(self, *_args: Any) -> None:
        running = self._job is not None or self.profile.running
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(self._job is not None)
        for b in (self.csv_button, self.json_button, self.report_button):
            b.setEnabled(not running and self.result is not None)
        self.profile.sync(not running and self.result is not None and bool(self.swept))

    def start(self) -> bool:
        from quantgui.core import UserError
        win = self.win
        if win.engine.busy or win.loaded is None:
            self.status.setText("Busy: wait for the current work to finish." if win.engine.busy
                                else "Open a model first.")
            return False
        try:
            recipes = self.chosen_recipes()
            if not recipes:
                raise ValueError("no recipe chosen")
            batches = parse_counts(self.batches.text(), "Batch sizes")
            threads = parse_counts(self.threads.text(), "Threads")
            cluster = self.cluster.value()
            model = self.model_reference() if cluster != LOCAL else None
        except (ValueError, UserError) as exc:
            self.status.setText(str(exc) if self.recipes.count() else
                                "Run a recipe first (or set one up): the sweep times the "
                                "current recipe and the session's.")
            return False
        budget = min(MAX_BUDGET_S, win.run_overrides.get("time_budget_s", MAX_BUDGET_S))
        self.points, self.result = [], None
        self._redraw()
        self.table.setRowCount(0)
        self.crossover.setText("")
        params = {"model_id": win.loaded.model_id, "recipes": [r.to_json() for r in recipes],
                  "batches": batches, "threads": threads, "time_budget_s": budget,
                  "cluster": cluster}
        if model is not None:  # each node opens the model itself, with the same parameters
            params["model"] = model
        self.swept = {r.describe(): r for r in recipes}
        req = win.engine.submit("sweep", params, kind="sweep")
        req.partial.connect(self._on_partial)
        req.finished.connect(self._on_finished)
        req.cancelled.connect(lambda _text: self._on_cancelled(req.cancel_data))
        req.failed.connect(self._on_failed)
        req.warned.connect(win.add_warning)
        self._job = req
        n = len(recipes) * len(batches) * len(threads)
        self.status.setText(f"Sweeping {n} points…")
        req.start()
        self._sync()
        self.started.emit()
        return True

    def model_reference(self) -> dict:
        from .sweep_cluster import model_reference
        return model_reference(self.win, "sweep")

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def start_profile(self) -> bool:
        """The selected table row's configuration, else the first recipe at the largest batch
        and the first thread count (what `quantgui-cli sweep --profile` profiles)."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        row = rows[0].row() if rows else self.table.currentRow()
        if 0 <= row < len(self.points) and self.points[row].recipe in self.swept:
            p = self.points[row]
            recipe, batch, threads = self.swept[p.recipe], p.batch, p.threads
        elif self.swept and self.result is not None:
            recipe = next(iter(self.swept.values()))
            batch, threads = max(self.result.batches), min(self.result.threads)
        else:
            return False
        return self.profile.start(recipe, batch, threads)

    def _on_partial(self, value: dict) -> None:
        from quantgui.core.results.sweep import SweepPoint
        if "point" not in value:
            return
        p = SweepPoint.from_json(value["point"])
        self.points.append(p)
        self._add_row(p)
        self.pointAdded.emit(p)
        self.status.setText(f"{len(self.points)} point(s) measured…")
        self._redraw()

    def _done(self, result: Any, how: str) -> None:
        self._job = None
        self.result = result
        if result is not None:
            self.crossover.setText("\n".join(c.text for c in result.crossovers) + "\n" +
                                   "\n".join(f"recommended: {t.recommended or 'the original'} "
                                             f"({t.reason})" for t in result.types))
            self._redraw()
        self.status.setText(how)
        self._sync()
        if result is not None:
            self.finished.emit(result)

    def _on_finished(self, value: dict) -> None:
        from quantgui.core.results.sweep import SweepResult
        result = SweepResult.from_json(value["sweep"])
        if [p.key() for p in result.points] != [p.key() for p in self.points]:
            # the result is the whole truth (a cluster's comes sorted by machine type)
            self.points = list(result.points)
            self.table.setRowCount(0)
            for p in self.points:
                self._add_row(p)
        self._done(result, f"Sweep done: {len(result.points)} point(s).")

    def _on_cancelled(self, data: Any) -> None:
        """The engine's answer holds the sweep so far; a killed engine's holds nothing, and
        the points already streamed are kept."""
        from quantgui.core.results.sweep import SweepResult
        sweep = (data or {}).get("sweep")
        if sweep:
            result = SweepResult.from_json(sweep)
            self.points = list(result.points)
        else:  # the engine was restarted to stop it: what streamed in is what there is
            result = SweepResult(self.win.loaded.info.source if self.win.loaded else "",
                                 sorted({p.recipe for p in self.points}),
                                 sorted({p.batch for p in self.points}),
                                 sorted({p.threads for p in self.points}),
                                 list(self.points), cancelled=True)
        self._done(result, f"Sweep cancelled: {len(self.points)} point(s) kept.")

    def _on_failed(self, err: Any) -> None:
        self._done(None, f"Sweep failed: {err.text}")
        self.failed.emit(err.text)

    # -- table and plots ------------------------------------------------------------------
    def _add_row(self, p: Any) -> None:
        def fmt(x: Optional[float], spec: str) -> str:
            return format(x, spec) if x is not None and math.isfinite(x) else "–"
        row = self.table.rowCount()
        self.table.insertRow(row)
        cells = [p.recipe, str(p.threads), str(p.batch)]
        if p.ok:
            cells += [fmt(p.before.median_ms, ".3f"), fmt(p.after.median_ms, ".3f"),
                      fmt(p.speedup, ".2f") + "x" + (" noisy" if p.noisy else ""),
                      f"{fmt(p.ci95[0], '.2f')}–{fmt(p.ci95[1], '.2f')}",
                      fmt(p.throughput("after"), ".0f")]
        else:
            cells += ["failed", printable(p.error or "", newlines=False), "", "", ""]
        for col, text in enumerate(cells):
            self.table.setItem(row, col, QTableWidgetItem(printable(text, newlines=False)))

    def _apply_theme(self, theme: Any) -> None:
        self._theme = theme
        self._redraw()

    def _redraw(self) -> None:
        theme = self._theme
        for plot in (self.latency_plot, self.throughput_plot):
            plot.clear()
            th.style_plot(plot, theme)
        ok = [p for p in self.points if p.ok]
        recipes = list(dict.fromkeys(p.recipe for p in ok))
        threads = sorted({p.threads for p in ok})
        styles = ["solid", "dashed", "dotted", "dash-dot"]
        key = [f'<span style="color:{theme.before}">&#9632;</span> original (before)'] + [
            f'<span style="color:{_PALETTE[i % len(_PALETTE)]}">&#9632;</span> '
            f'{html_text(r)}' for i, r in enumerate(recipes)]
        lines = ", ".join(f"{styles[i % len(styles)]} {t} thread(s)"
                          for i, t in enumerate(threads))
        self.key.setText("&nbsp;&nbsp;".join(key) + (f" &nbsp;·&nbsp; {lines}" if lines else "")
                         + (" &nbsp;·&nbsp; &#9733; where a recipe starts paying"
                            if self.result is not None else ""))
        for t_i, t in enumerate(threads):
            dash = _DASHES[t_i % len(_DASHES)]
            base = sorted({p.batch: p for p in ok if p.threads == t}.values(),
                          key=lambda p: p.batch)
            if base:  # "before" is the same original for every recipe
                self._line(base, "before", pg.mkPen(theme.before, width=2, style=dash),
                           f"original · {t} thr")
            for r_i, recipe in enumerate(recipes):
                line = sorted((p for p in ok if p.recipe == recipe and p.threads == t),
                              key=lambda p: p.batch)
                pen = pg.mkPen(_PALETTE[r_i % len(_PALETTE)], width=2, style=dash)
                self._line(line, "after", pen, f"{recipe} · {t} thr")
        if self.result is not None:
            for c in self.result.crossovers:
                if c.batch is None or c.smallest:
                    continue
                at = [p for p in ok if p.recipe == c.recipe and p.threads == c.threads
                      and p.batch == c.batch]
                if at:
                    mark = pg.ScatterPlotItem([math.log10(c.batch)], [at[0].after.median_ms],
                                              symbol="star", size=16,
                                              brush=pg.mkBrush(theme.good), pen=None)
                    self.latency_plot.addItem(mark)
                    label = pg.TextItem(f"from {c.batch}", color=theme.foreground,
                                        anchor=(0, 1))
                    label.setPos(math.log10(c.batch), at[0].after.median_ms)
                    self.latency_plot.addItem(label)

    def _line(self, points: list, which: str, pen: Any, name: str) -> None:
        if not points:
            return
        xs = [p.batch for p in points]
        lat = [(p.before if which == "before" else p.after).median_ms for p in points]
        thr = [p.throughput(which) for p in points]
        sym = "o" if which == "after" else "t"
        self.latency_plot.plot(xs, lat, pen=pen, symbol=sym, symbolSize=6,
                               symbolBrush=pen.color(), name=printable(name, newlines=False))
        self.throughput_plot.plot(xs, thr, pen=pen, symbol=sym, symbolSize=6,
                                  symbolBrush=pen.color())


def add_sweep_view(win: Any) -> SweepView:
    """The dock (hidden until asked for), its View-menu toggle and Tools > Sweep…"""
    from .tool_dock import add_tool_view
    add_tool_view(win, name="sweep", title="Sweep", action_text="Sweep batch sizes and threads…",
                  tooltip="Time recipes over batch sizes and thread counts: latency and "
                  "throughput vs batch, where each recipe starts paying",
                  make=SweepView, attr="sweep_view", height=430, lazy=False,
                  before_show=lambda view: view.refresh_recipes())
    return win.sweep_view
