"""HistoryView: every variant run this session, as a table and a latency/quality scatter.

The table lists every run of the session, with the model it ran on. The scatter shows the
trade-off across the variants of ONE model (latencies of different models are not comparable):
latency (x, lower is better) against accuracy, or cosine similarity to the original when the
data has no labels (y, higher is better); marker area follows model size, that model's original
is a star, and the Pareto front is drawn through the variants nothing else beats on both axes.
A model box above the scatter chooses the model when the session has several; it follows the
last run and the row selected. Selecting a row (or clicking a point) emits
`variantSelected(result)`.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from ..safe_text import tooltip
from . import theme as th
from .base import fmt_ms, model_name, num, recipe_label
from .pareto import pareto_front
from .budget_marks import budget_subtitle, fails_budget
from .tradeoff_plot import TradeoffPlot
from .turns import paint_later

# The columns that decide (speedup, verdict) come right after what the row is (model, recipe),
# so they are in view without scrolling in a narrow history.
COLUMNS = [
    ("#", "Order in which the variants were run"),
    ("Model", "The model the variant was made from"),
    ("Recipe", "The steps applied, in order"),
    ("Speedup", "Median before / after latency; the 95% CI is in the cell's tooltip"),
    ("Verdict", "faster / slower / not faster / inconclusive, judged from the speedup's 95% "
                "confidence interval, with any quality lost beside it (amber rows)"),
    ("Latency", "Median latency per batch of the optimized model"),
    ("Accuracy / fidelity", "Accuracy after (change vs before), or cosine similarity and top-1 "
                            "agreement with the original when the data has no labels"),
    ("Size (MB)", "Serialized size of the optimized model (1 MB = 10^6 bytes)"),
    ("Size ratio", "After / before serialized size (lower is smaller)"),
    ("Notes", "What each step did, and warnings"),
]
COL = {title: i for i, (title, _) in enumerate(COLUMNS)}
#: Widest the text columns start (elided, full text in the tooltip; the user can widen them).
MAX_WIDTH = {"Model": 130, "Recipe": 200}
INDEX_ROLE = Qt.ItemDataRole.UserRole
SORT_ROLE = Qt.ItemDataRole.UserRole + 1


class _Item(QTableWidgetItem):
    """Sorts by the number stored under SORT_ROLE when there is one, else by text."""

    def __lt__(self, other: QTableWidgetItem) -> bool:
        a, b = self.data(SORT_ROLE), other.data(SORT_ROLE)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            return a < b
        if isinstance(a, (int, float)) != isinstance(b, (int, float)):
            return isinstance(a, (int, float))  # known values before unknown ones
        return super().__lt__(other)


def quality_of(result: Any, metric: str) -> Optional[float]:
    if metric == "accuracy":
        return num(result.after.accuracy)
    return num(result.fidelity.cosine)


def choose_metric(results: list[Any]) -> str:
    """Accuracy when every variant has it, else cosine when that covers more variants."""
    acc = sum(quality_of(r, "accuracy") is not None for r in results)
    cos = sum(quality_of(r, "cosine") is not None for r in results)
    return "accuracy" if acc == len(results) or acc >= cos else "cosine"


def notes_of(result: Any) -> str:
    out = [f"{step.name}: {n}" for step in result.steps for n in step.notes]
    out += [f"⚠ {w}" for w in result.verdict.warnings]
    if result.noisy:
        out.append(f"⚠ noisy: {result.noisy_reason or 'timing was unstable'}")
    return "\n".join(out)


class HistoryView(QWidget):
    variantSelected = Signal(object)  # the RunResult of the row
    rowSelected = Signal(int)         # its index in run order (-1: none or several)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._results: list[Any] = []  # RunResults, in run order
        self._recipes: list[str] = []
        self._front: list[int] = []
        self._shown: list[int] = []      # indices of the results of the model in the scatter
        self._model: Optional[str] = None  # that model's source
        self._metric = "accuracy"
        self.table = QTableWidget(0, len(COLUMNS))
        for col, (title, tip) in enumerate(COLUMNS):
            head = QTableWidgetItem(title)
            head.setToolTip(tip)
            self.table.setHorizontalHeaderItem(col, head)
        self.table.setToolTip("Every variant run this session; select a row to show its plots")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.table.setMinimumWidth(160)
        self.table.verticalHeader().setVisible(False)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for title in MAX_WIDTH:
            header.setSectionResizeMode(COL[title], QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_selection)

        self.model_combo = QComboBox()
        self.model_combo.setObjectName("historyModel")
        self.model_combo.setToolTip("The model whose variants the scatter compares (latencies "
                                    "of different models are not comparable)")
        self.model_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.model_combo.setMinimumContentsLength(8)
        self.model_combo.currentIndexChanged.connect(self._on_model_chosen)
        self.model_row = QWidget()
        row = QHBoxLayout(self.model_row)
        row.setContentsMargins(4, 2, 4, 0)
        row.addWidget(QLabel("Model:"))
        row.addWidget(self.model_combo, 1)
        self.model_row.hide()  # shown once the session holds runs of two models
        self.plot = TradeoffPlot()
        self.plot.points.sigClicked.connect(self._on_point_clicked)
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.setSpacing(0)
        rl.addWidget(self.model_row)
        rl.addWidget(self.plot, 1)
        self.splitter = splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(right)
        splitter.setChildrenCollapsible(False)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([600, 400])  # scaled to the real width when first shown
        self._user_split = False  # the user dragged the handle: leave the split alone
        splitter.splitterMoved.connect(lambda *_: setattr(self, "_user_split", True))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._watcher = th.ThemeWatcher(self, self._retheme)

    def _retheme(self, theme: th.Theme) -> None:
        self.plot.apply_theme(theme)
        for row in range(self.table.rowCount()):
            index = self.table.item(row, 0).data(INDEX_ROLE)
            if index is not None:
                self._colour_row(row, self._results[index], theme)
        self._redraw()

    def _colour_row(self, row: int, result: Any, theme: th.Theme) -> None:
        """The verdict in its colour; a result that lost quality gets an amber row, so it
        cannot pass for a clean win at a glance."""
        degraded = result.verdict.degraded
        background = QBrush(QColor(theme.degraded_bg)) if degraded else QBrush()
        for col in range(self.table.columnCount()):
            item = self.table.item(row, col)
            item.setBackground(background)
            if degraded and col != COL["Verdict"]:
                item.setForeground(QBrush(QColor(theme.foreground)))
        self.table.item(row, COL["Verdict"]).setForeground(
            pg.mkColor(theme.verdict_colour(result.verdict.label, degraded)))

    def degraded_rows(self) -> list[int]:
        """Indices into results() whose row is marked for a quality loss."""
        return [i for i, r in enumerate(self._results) if r.verdict.degraded]

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._split()

    def _split(self) -> None:
        """Give the table the width of its columns up to the verdict (60-75% of the view), the
        scatter the rest, until the user moves the handle."""
        width = self.splitter.width()
        if self._user_split or width <= 0:
            return
        need = sum(self.table.columnWidth(c) for c in range(COL["Verdict"] + 1))
        need += 2 * self.table.frameWidth() + self.table.verticalScrollBar().sizeHint().width()
        table = int(max(0.6 * width, min(0.75 * width, need)))
        self.splitter.setSizes([table, width - table])

    # -- interface --------------------------------------------------------------------------
    def add(self, result: Any, recipe_text: str) -> None:
        """A row for a `RunResult` (`recipe_text`: the recipe as the user saw it)."""
        self._results.append(result)
        self._recipes.append(recipe_label(result, recipe_text))
        self._add_row(len(self._results) - 1)
        self._sync_models(self._source(len(self._results) - 1))  # the scatter follows the run
        self._split()

    def results(self) -> list[Any]:
        return list(self._results)

    def clear(self) -> None:
        self._results.clear()
        self._recipes.clear()
        self.table.setRowCount(0)
        self._sync_models(self._model)

    def load(self, entries: list[tuple[Any, str]]) -> None:
        self.clear()
        for result, recipe_text in entries:
            self.add(result, recipe_text)

    def pareto_indices(self) -> list[int]:
        """Indices into results() of the variants on the Pareto front of the model shown
        (by latency)."""
        return list(self._front)

    def plotted_indices(self) -> list[int]:
        """Indices into results() of the variants of the model the scatter shows."""
        return list(self._shown)

    def shown_model(self) -> Optional[str]:
        """The source of the model the scatter shows (None before any run)."""
        return self._model

    def set_current_model(self, source: str) -> None:
        """The window opened `source`: show its variants when the session has some."""
        if any(self._source(i) == source for i in range(len(self._results))):
            self._sync_models(source)

    def quality_metric(self) -> str:
        return self._metric

    def select(self, index: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(INDEX_ROLE) == index:
                self.table.selectRow(row)
                return

    # -- models -----------------------------------------------------------------------------
    def _source(self, index: int) -> str:
        return self._results[index].source

    def _sync_models(self, show: Optional[str]) -> None:
        """Refill the model box (first-run order) and show `show` (or the first model)."""
        sources = list(dict.fromkeys(self._source(i) for i in range(len(self._results))))
        if show not in sources:
            show = sources[-1] if sources else None
        combo = self.model_combo
        combo.blockSignals(True)
        combo.clear()
        for src in sources:
            combo.addItem(model_name(src), src)
            combo.setItemData(combo.count() - 1, tooltip(src or "(not recorded)"),
                              Qt.ItemDataRole.ToolTipRole)
        combo.setCurrentIndex(sources.index(show) if show is not None else -1)
        combo.blockSignals(False)
        self.model_row.setVisible(len(sources) > 1)
        self._model = show
        self._redraw()

    def _on_model_chosen(self, i: int) -> None:
        if i >= 0:
            self._model = self.model_combo.itemData(i)
            self._redraw()
            rows = {it.row() for it in self.table.selectedItems()}
            if len(rows) == 1:
                index = self.table.item(rows.pop(), 0).data(INDEX_ROLE)
                if isinstance(index, int) and index in self._shown:
                    self._mark_selected(index)

    # -- table ------------------------------------------------------------------------------
    def _add_row(self, index: int) -> None:
        r = self._results[index]
        recipe = self._recipes[index]
        source = self._source(index)
        size = num(r.after.size_bytes)
        lat = num(r.after.latency.median_ms)
        lat_b = num(r.before.latency.median_ms)
        speed = num(r.timing.speedup)
        ci = r.timing.ci95 if r.timing.ci_known else None
        ratio = num(r.size_ratio)
        verdict_tip = "\n".join(x for x in [r.verdict.inconclusive_reason, *r.quality.reasons,
                                             *r.verdict.reasons] if x)
        notes = notes_of(r)
        quality, quality_sort, quality_tip = self._quality_cell(r)
        cells = {
            "#": (str(index + 1), index + 1, ""),
            "Model": (model_name(source), None, tooltip(source or "(not recorded)")),
            "Recipe": (recipe.splitlines()[0] if recipe else "", None, recipe),
            "Speedup": (f"{speed:.2f}x" if speed is not None else "–", speed,
                        f"95% CI {ci[0]:.2f}–{ci[1]:.2f}x" if ci is not None else ""),
            "Verdict": (r.summary() + (" ⚠" if r.noisy else ""), None, verdict_tip),
            "Latency": (fmt_ms(lat), lat, f"before {fmt_ms(lat_b)}" if lat_b is not None else ""),
            "Accuracy / fidelity": (quality, quality_sort, quality_tip),
            "Size (MB)": (f"{size / 1e6:.3g}" if size is not None else "–", size, ""),
            "Size ratio": (f"{ratio:.2f}x" if ratio is not None else "–", ratio, ""),
            "Notes": (notes.replace("\n", "; "), None, notes),
        }
        self.table.setSortingEnabled(False)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for title, (text, sort, tip) in cells.items():
            item = _Item(text)
            item.setData(INDEX_ROLE, index)
            if sort is not None:
                item.setData(SORT_ROLE, float(sort))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(tip or text)
            self.table.setItem(row, COL[title], item)
        self._colour_row(row, r, self.plot.theme)
        self.table.setSortingEnabled(True)
        for title, widest in MAX_WIDTH.items():
            self.table.resizeColumnToContents(COL[title])
            self.table.setColumnWidth(COL[title], min(self.table.columnWidth(COL[title]), widest))

    @staticmethod
    def _quality_cell(r: Any) -> tuple[str, Optional[float], str]:
        acc_a, acc_b = num(r.after.accuracy), num(r.before.accuracy)
        cos = num(r.fidelity.cosine)
        agree = num(r.fidelity.top1_agreement)
        sqnr = num(r.fidelity.sqnr_db)
        fid = " · ".join(x for x in (f"cosine {cos:.4f}" if cos is not None else "",
                                     f"agree {agree * 100:.1f}%" if agree is not None else "",
                                     f"SQNR {sqnr:.1f} dB" if sqnr is not None else "") if x)
        if acc_a is not None:
            delta = f" ({(acc_a - acc_b) * 100:+.1f})" if acc_b is not None else ""
            return f"{acc_a * 100:.1f}%{delta}", acc_a, fid
        return fid or "–", cos, fid

    def _on_selection(self) -> None:
        rows = {i.row() for i in self.table.selectedItems()}
        if len(rows) != 1:
            self.plot.selected.setData([], [])
            self.rowSelected.emit(-1)
            return
        index = self.table.item(rows.pop(), 0).data(INDEX_ROLE)
        if isinstance(index, int) and 0 <= index < len(self._results):
            self.rowSelected.emit(index)
            if self._source(index) != self._model:
                self._sync_models(self._source(index))  # the scatter shows the row's model
            self._mark_selected(index)
            self.variantSelected.emit(self._results[index])

    def _on_point_clicked(self, _item: Any, points: Any, *_: Any) -> None:
        if len(points):
            index = points[0].data()[1] if isinstance(points[0].data(), tuple) else None
            if isinstance(index, int):
                self.select(index)

    # -- scatter ----------------------------------------------------------------------------
    def _redraw(self) -> None:
        plot = self.plot
        self._shown = [i for i in range(len(self._results)) if self._source(i) == self._model]
        results = [self._results[i] for i in self._shown]
        self._metric = choose_metric(results) if results else "accuracy"
        metric = self._metric
        xs = [num(r.after.latency.median_ms) for r in results]
        ys = [quality_of(r, metric) for r in results]
        sizes = [num(r.after.size_bytes) for r in results]
        scale = 100.0 if metric == "accuracy" else 1.0
        biggest = max([s for s in sizes if s] or [1.0])
        spots = []
        for k, (x, y) in enumerate(zip(xs, ys)):
            if x is None or y is None:
                continue
            s = sizes[k]
            colour = plot.theme.verdict_colour(results[k].verdict.label,
                                               results[k].verdict.degraded)
            spots.append({"pos": (x, y * scale),
                          "size": 8 + 18 * math.sqrt(s / biggest) if s else 10,
                          "brush": pg.mkBrush(plot.theme.brush(colour, 200)),
                          # a variant that fails the budget is a cross, not a dot
                          "symbol": "x" if fails_budget(results[k]) else "o",
                          "data": (self._tip(self._shown[k], x, y * scale), self._shown[k])})
        plot.points.setData(spots)
        # The star is this model's original, as its latest run that timed it measured it.
        base = next((r for r in reversed(results) if num(r.before.latency.median_ms) is not None),
                    None)
        bx = num(base.before.latency.median_ms) if base is not None else None
        by = (num(base.before.accuracy) if base is not None else None) \
            if metric == "accuracy" else (1.0 if bx is not None else None)
        if bx is not None and by is not None:
            plot.baseline.setData([{"pos": (bx, by * scale),
                                    "data": f"original model\n{fmt_ms(bx)}, "
                                            f"{self._fmt(by * scale)}"}])
        else:
            plot.baseline.setData([])
        pts = list(zip(xs, ys)) + ([(bx, by)] if bx is not None and by is not None else [])
        front = pareto_front(pts)
        self._front = [self._shown[k] for k in front if k < len(results)]
        plot.front.setData([pts[k][0] for k in front], [pts[k][1] * scale for k in front])
        if spots or plot.baseline.data.size:
            if plot.is_empty():
                plot.set_empty(False)
                plot.enableAutoRange()
        else:
            plot.set_empty(True)
        plot.set_axis_label("left", "accuracy (%)" if metric == "accuracy"
                            else "cosine similarity to original")
        skipped = sum(1 for x, y in zip(xs, ys) if x is None or y is None)
        sub = budget_subtitle(plot, results, metric, by, scale,
                              [x for x in xs + [bx] if x is not None])
        if results:
            sub.append((f"{model_name(self._model)}: {len(results)} variant(s); front: " +
                        (", ".join(f"#{i + 1}" for i in self._front) or "–"), "muted"))
        if skipped:
            sub.append((f"{skipped} without {metric} not plotted", "warn"))
        plot.set_subtitle(*sub)
        paint_later(plot)  # after the result's plots, in a turn of its own
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows:
            plot.selected.setData([], [])

    def _mark_selected(self, index: int) -> None:
        r = self._results[index]
        x = num(r.after.latency.median_ms)
        y = quality_of(r, self._metric)
        if x is None or y is None or index not in self._shown:
            self.plot.selected.setData([], [])
            return
        scale = 100.0 if self._metric == "accuracy" else 1.0
        self.plot.selected.setData([x], [y * scale], size=30)

    def _fmt(self, y: float) -> str:
        return f"accuracy {y:.1f}%" if self._metric == "accuracy" else f"cosine {y:.4f}"

    def _tip(self, i: int, x: float, y: float) -> str:
        r = self._results[i]
        size = num(r.after.size_bytes)
        speed = num(r.timing.speedup)
        lines = [f"#{i + 1} {self._recipes[i]}", f"{fmt_ms(x)}, {self._fmt(y)}"]
        if size is not None:
            lines.append(f"{size / 1e6:.3g} MB")
        if speed is not None:
            lines.append(f"speedup {speed:.2f}x, {r.summary()}")
        return "\n".join(lines)
