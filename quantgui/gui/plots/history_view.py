"""HistoryView: every variant run this session, as a table and a latency/quality scatter.

The scatter shows the trade-off across variants: latency (x, lower is better) against accuracy,
or cosine similarity to the original when the data has no labels (y, higher is better); marker
area follows model size, the original model is a star, and the Pareto front is drawn through
the variants nothing else beats on both axes. Selecting a row (or clicking a point) emits
`variantSelected(result)`.
"""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (QAbstractItemView, QHeaderView, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from ...core.verdict_words import label_of, result_quality, summary_of
from . import theme as th
from .base import BasePlot, get, num
from .pareto import pareto_front

COLUMNS = [
    ("#", "Order in which the variants were run"),
    ("Recipe", "The steps applied, in order"),
    ("Verdict", "faster / slower / not faster / inconclusive, judged from the speedup's 95% "
                "confidence interval, with any quality lost beside it (amber rows)"),
    ("Size (MB)", "Serialized size of the optimized model (1 MB = 10^6 bytes)"),
    ("Latency (ms)", "Median latency per batch of the optimized model"),
    ("Accuracy / fidelity", "Accuracy after (change vs before), or cosine similarity and top-1 "
                            "agreement with the original when the data has no labels"),
    ("Speedup", "Median before / after latency; the 95% CI is in the cell's tooltip"),
    ("Size ratio", "After / before serialized size (lower is smaller)"),
    ("Notes", "What each step did, and warnings"),
]
#: Next to the recipe: the verdict is what a row is read for, so it is never scrolled off.
VERDICT_COL = 2
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


def recipe_label(result: dict, recipe_text: str) -> str:
    if recipe_text and recipe_text.strip():
        return recipe_text.strip()
    steps = get(result, "recipe", "steps", default=[])
    names = []
    for s in steps if isinstance(steps, list) else []:
        name = get(s, "technique") or get(s, "name") if isinstance(s, dict) else s
        if name:
            names.append(str(name))
    return " → ".join(names) or "(no steps)"


def quality_of(result: dict, metric: str) -> Optional[float]:
    if metric == "accuracy":
        return num(get(result, "after", "accuracy"))
    return num(get(result, "fidelity", "cosine"))


def choose_metric(results: list[dict]) -> str:
    """Accuracy when every variant has it, else cosine when that covers more variants."""
    acc = sum(quality_of(r, "accuracy") is not None for r in results)
    cos = sum(quality_of(r, "cosine") is not None for r in results)
    return "accuracy" if acc == len(results) or acc >= cos else "cosine"


def notes_of(result: dict) -> str:
    out: list[str] = []
    for step in get(result, "steps", default=[]) if isinstance(get(result, "steps"), list) else []:
        notes = get(step, "notes", default=[])
        for n in [notes] if isinstance(notes, str) else notes if isinstance(notes, list) else []:
            out.append(f"{get(step, 'name', default='step')}: {n}")
    for w in get(result, "verdict", "warnings", default=[]):
        out.append(f"⚠ {w}")
    if get(result, "noisy") is True:
        reason = get(result, "noisy_reason") or get(result, "noise_reason")
        out.append(f"⚠ noisy: {reason or 'timing was unstable'}")
    return "\n".join(str(o) for o in out)


class TradeoffPlot(BasePlot):
    name = "tradeoff"
    title = "Latency vs quality"
    help = ("Each variant: latency (x, lower is better) against quality (y, higher is better); "
            "marker area follows model size; colour follows the verdict; the star is the original "
            "model. The line joins the Pareto front. Hover a point for its recipe; click to "
            "select it.")

    def _build(self) -> None:
        item = self.getPlotItem()
        self.front = pg.PlotDataItem([], [])
        # Spot data is (tooltip text, index into results); the tooltip shows the text.
        self.points = pg.ScatterPlotItem(
            hoverable=True, tip=lambda x, y, data: data[0] if isinstance(data, tuple) else str(data))
        self.baseline = pg.ScatterPlotItem(hoverable=True, tip=lambda x, y, data: data,
                                           symbol="star", size=16)
        self.selected = pg.ScatterPlotItem(symbol="o", brush=None)
        for it in (self.front, self.points, self.baseline, self.selected):
            item.addItem(it)
        self.set_axis_label("bottom", "latency (ms, median)")
        self.setMinimumSize(240, 180)

    def _restyle(self) -> None:
        t = self.theme
        self.front.setPen(pg.mkPen(t.pareto, width=1.5, style=Qt.PenStyle.DashLine))
        self.baseline.setBrush(pg.mkBrush(t.before))
        self.baseline.setPen(pg.mkPen(t.foreground, width=1))
        self.selected.setPen(pg.mkPen(t.foreground, width=2.5))
        self.points.setPen(pg.mkPen(t.foreground, width=0.8))
        self.points.opts["hoverPen"] = pg.mkPen(t.foreground, width=2.5)


class HistoryView(QWidget):
    variantSelected = Signal(dict)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self._results: list[dict] = []
        self._recipes: list[str] = []
        self._front: list[int] = []
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
        self.table.verticalHeader().setVisible(False)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.plot = TradeoffPlot()
        self.plot.points.sigClicked.connect(self._on_point_clicked)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.table)
        splitter.addWidget(self.plot)
        splitter.setStretchFactor(0, 3)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([600, 400])  # scaled to the real width when first shown
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

    def _colour_row(self, row: int, result: dict, theme: th.Theme) -> None:
        """The verdict in its colour; a result that lost quality gets an amber row, so it
        cannot pass for a clean win at a glance."""
        degraded = result_quality(result).degraded
        background = QBrush(QColor(theme.degraded_bg)) if degraded else QBrush()
        for col in range(self.table.columnCount()):
            item = self.table.item(row, col)
            item.setBackground(background)
            if degraded and col != VERDICT_COL:
                item.setForeground(QBrush(QColor(theme.foreground)))
        self.table.item(row, VERDICT_COL).setForeground(
            pg.mkColor(theme.verdict_colour(label_of(result), degraded)))

    def degraded_rows(self) -> list[int]:
        """Indices into results() whose row is marked for a quality loss."""
        return [i for i, r in enumerate(self._results) if result_quality(r).degraded]

    # -- interface --------------------------------------------------------------------------
    def add(self, result: dict, recipe_text: str) -> None:
        result = result if isinstance(result, dict) else {}
        self._results.append(result)
        self._recipes.append(recipe_label(result, recipe_text))
        self._add_row(len(self._results) - 1)
        self._redraw()

    def results(self) -> list[dict]:
        return list(self._results)

    def clear(self) -> None:
        self._results.clear()
        self._recipes.clear()
        self.table.setRowCount(0)
        self._redraw()

    def load(self, entries: list[tuple[dict, str]]) -> None:
        self.clear()
        for result, recipe_text in entries:
            self.add(result, recipe_text)

    def pareto_indices(self) -> list[int]:
        """Indices into results() of the variants on the Pareto front (by latency)."""
        return list(self._front)

    def quality_metric(self) -> str:
        return self._metric

    def select(self, index: int) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 0).data(INDEX_ROLE) == index:
                self.table.selectRow(row)
                return

    # -- table ------------------------------------------------------------------------------
    def _add_row(self, index: int) -> None:
        r = self._results[index]
        recipe = self._recipes[index]
        size = num(get(r, "after", "size_bytes"))
        lat = num(get(r, "after", "latency_ms", "median"))
        lat_b = num(get(r, "before", "latency_ms", "median"))
        speed = num(get(r, "speedup", "median"))
        ci = get(r, "speedup", "ci95")
        ratio = num(get(r, "size_ratio"))
        reasons = get(r, "verdict", "reasons", default=[])
        verdict_tip = "\n".join(str(x) for x in [get(r, "verdict", "inconclusive_reason")]
                                + result_quality(r).reasons
                                + (reasons if isinstance(reasons, list) else []) if x)
        notes = notes_of(r)
        quality, quality_sort, quality_tip = self._quality_cell(r)
        cells = [
            (str(index + 1), index + 1, ""),
            (recipe.splitlines()[0] if recipe else "", None, recipe),
            (summary_of(r) + (" ⚠" if get(r, "noisy") is True else ""), None, verdict_tip),
            (f"{size / 1e6:.3g}" if size is not None else "–", size, ""),
            (f"{lat:.3g}" if lat is not None else "–", lat,
             f"before {lat_b:.3g} ms" if lat_b is not None else ""),
            (quality, quality_sort, quality_tip),
            (f"{speed:.2f}x" if speed is not None else "–", speed,
             f"95% CI {num(ci[0]):.2f}–{num(ci[1]):.2f}x" if isinstance(ci, (list, tuple))
             and len(ci) == 2 and num(ci[0]) is not None and num(ci[1]) is not None else ""),
            (f"{ratio:.2f}x" if ratio is not None else "–", ratio, ""),
            (notes.replace("\n", "; "), None, notes),
        ]
        self.table.setSortingEnabled(False)
        row = self.table.rowCount()
        self.table.insertRow(row)
        for col, (text, sort, tip) in enumerate(cells):
            item = _Item(text)
            item.setData(INDEX_ROLE, index)
            if sort is not None:
                item.setData(SORT_ROLE, float(sort))
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            item.setToolTip(tip or text)
            self.table.setItem(row, col, item)
        self._colour_row(row, r, self.plot.theme)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnToContents(1)
        self.table.setColumnWidth(1, min(self.table.columnWidth(1), 280))

    @staticmethod
    def _quality_cell(r: dict) -> tuple[str, Optional[float], str]:
        acc_a, acc_b = num(get(r, "after", "accuracy")), num(get(r, "before", "accuracy"))
        cos = num(get(r, "fidelity", "cosine"))
        agree = num(get(r, "fidelity", "top1_agreement"))
        sqnr = num(get(r, "fidelity", "sqnr_db"))
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
            return
        index = self.table.item(rows.pop(), 0).data(INDEX_ROLE)
        if isinstance(index, int) and 0 <= index < len(self._results):
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
        results = self._results
        self._metric = choose_metric(results) if results else "accuracy"
        metric = self._metric
        xs = [num(get(r, "after", "latency_ms", "median")) for r in results]
        ys = [quality_of(r, metric) for r in results]
        sizes = [num(get(r, "after", "size_bytes")) for r in results]
        scale = 100.0 if metric == "accuracy" else 1.0
        biggest = max([s for s in sizes if s] or [1.0])
        spots = []
        for i, (x, y) in enumerate(zip(xs, ys)):
            if x is None or y is None:
                continue
            s = sizes[i]
            colour = plot.theme.verdict_colour(label_of(results[i]),
                                               result_quality(results[i]).degraded)
            spots.append({"pos": (x, y * scale),
                          "size": 8 + 18 * math.sqrt(s / biggest) if s else 10,
                          "brush": pg.mkBrush(plot.theme.brush(colour, 200)),
                          "data": (self._tip(i, x, y * scale), i)})
        plot.points.setData(spots)
        base = results[-1] if results else {}
        bx = num(get(base, "before", "latency_ms", "median"))
        by = num(get(base, "before", "accuracy")) if metric == "accuracy" else (
            1.0 if bx is not None else None)
        if bx is not None and by is not None:
            plot.baseline.setData([{"pos": (bx, by * scale),
                                    "data": f"original model\n{bx:.3g} ms, "
                                            f"{self._fmt(by * scale)}"}])
        else:
            plot.baseline.setData([])
        pts = list(zip(xs, ys)) + ([(bx, by)] if bx is not None and by is not None else [])
        front = pareto_front(pts)
        self._front = [i for i in front if i < len(results)]
        plot.front.setData([pts[i][0] for i in front], [pts[i][1] * scale for i in front])
        plot.set_axis_label("left", "accuracy (%)" if metric == "accuracy"
                            else "cosine similarity to original")
        skipped = sum(1 for x, y in zip(xs, ys) if x is None or y is None)
        sub = [(f"{len(results)} variant(s); front: " +
                (", ".join(f"#{i + 1}" for i in self._front) or "–"), "muted")]
        if skipped:
            sub.append((f"{skipped} without {metric} not plotted", "warn"))
        plot.set_subtitle(*sub)
        rows = {i.row() for i in self.table.selectedItems()}
        if not rows:
            plot.selected.setData([], [])

    def _mark_selected(self, index: int) -> None:
        r = self._results[index]
        x = num(get(r, "after", "latency_ms", "median"))
        y = quality_of(r, self._metric)
        if x is None or y is None:
            self.plot.selected.setData([], [])
            return
        scale = 100.0 if self._metric == "accuracy" else 1.0
        self.plot.selected.setData([x], [y * scale], size=30)

    def _fmt(self, y: float) -> str:
        return f"accuracy {y:.1f}%" if self._metric == "accuracy" else f"cosine {y:.4f}"

    def _tip(self, i: int, x: float, y: float) -> str:
        r = self._results[i]
        size = num(get(r, "after", "size_bytes"))
        speed = num(get(r, "speedup", "median"))
        lines = [f"#{i + 1} {self._recipes[i]}", f"{x:.3g} ms, {self._fmt(y)}"]
        if size is not None:
            lines.append(f"{size / 1e6:.3g} MB")
        if speed is not None:
            lines.append(f"speedup {speed:.2f}x, {summary_of(r)}")
        return "\n".join(lines)
