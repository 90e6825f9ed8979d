"""The history's scatter: latency against quality for the variants of one model."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import Qt

from .base import BasePlot


class TradeoffPlot(BasePlot):
    name = "tradeoff"
    title = "Latency vs quality"
    help = ("Each variant of one model (the model box above chooses which when the session "
            "has several): latency (x, lower is better) against quality (y, higher is better); "
            "marker area follows model size; colour follows the verdict; the star is that "
            "model's original. The line joins the Pareto front. The dotted line is the quality "
            "budget; a cross marks a variant that fails it. Hover a point for its recipe; "
            "click to select it.")
    empty_text = "no variants yet"

    def _build(self) -> None:
        item = self.getPlotItem()
        self.front = pg.PlotDataItem([], [])
        # Spot data is (tooltip text, index into results); the tooltip shows the text.
        self.points = pg.ScatterPlotItem(
            hoverable=True, tip=lambda x, y, data: data[0] if isinstance(data, tuple) else str(data))
        self.baseline = pg.ScatterPlotItem(hoverable=True, tip=lambda x, y, data: data,
                                           symbol="star", size=16)
        self.selected = pg.ScatterPlotItem(symbol="o", brush=None)
        #: The quality budget's floor across the points (a data item, so the view's range
        #: takes it in even when every point sits far above it).
        self.budget_line = pg.PlotDataItem([], [])
        for it in (self.budget_line, self.front, self.points, self.baseline, self.selected):
            item.addItem(it)
        self.set_axis_label("bottom", "latency (ms, median)")
        self.set_empty(True)

    def _restyle(self) -> None:
        t = self.theme
        self.front.setPen(pg.mkPen(t.pareto, width=1.5, style=Qt.PenStyle.DashLine))
        self.baseline.setBrush(pg.mkBrush(t.before))
        self.baseline.setPen(pg.mkPen(t.foreground, width=1))
        self.selected.setPen(pg.mkPen(t.foreground, width=2.5))
        self.points.setPen(pg.mkPen(t.foreground, width=0.8))
        self.points.opts["hoverPen"] = pg.mkPen(t.foreground, width=2.5)
        self.budget_line.setPen(pg.mkPen(t.warn, width=2, style=Qt.PenStyle.DotLine))
