"""Accuracy: running accuracy while evaluating, then before/after bars and fidelity; QAT loss."""

from __future__ import annotations

from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt

from .base import CATEGORY_TICKS, BasePlot, num
from .theme import COLOUR_HELP

WHICH = ("before", "after")


def fidelity_text(result: Any, sep: str = " · ") -> str:
    """'top-1 agreement 99.1% · cosine 0.9994 · SQNR 31.2 dB' (only the finite metrics)."""
    f = result.fidelity
    parts = []
    agree = num(f.top1_agreement)
    if agree is not None:
        parts.append(f"top-1 agreement {agree * 100:.1f}%")
    cos = num(f.cosine)
    if cos is not None:
        cmin = num(f.cosine_min)
        parts.append(f"cosine {cos:.4f}" + (f" (min {cmin:.4f})" if cmin is not None else ""))
    sqnr = num(f.sqnr_db)
    if sqnr is not None:
        parts.append(f"SQNR {sqnr:.1f} dB")
    err = num(f.max_abs_error)
    if err is not None:
        parts.append(f"max |error| {err:.3g}")
    return sep.join(parts)


def percent_range(values: list[float]) -> tuple[float, float]:
    """A y range for percentages: around the values, never below 0 or above 100 (plus room for
    the top tick label), at least 4 points tall so the ticks are whole percents."""
    lo, hi = min(values), max(values)
    pad = max(1.0, 0.1 * (hi - lo))
    lo, hi = max(0.0, lo - pad), min(100.0, hi + pad)
    if hi - lo < 4.0:
        lo, hi = (max(0.0, hi - 4.0), hi) if hi - 4.0 >= 0 else (0.0, 4.0)
    return lo - 0.02 * (hi - lo), hi + 0.04 * (hi - lo)


class AccuracyPlot(BasePlot):
    name = "accuracy"
    title = "Accuracy"
    help = ("While evaluating: the running accuracy per batch (or the agreement with the original "
            "model when the data has no labels). Finally: accuracy before and after as bars, and "
            "how closely the optimized outputs follow the original (top-1 agreement, cosine "
            "similarity, SQNR). " + COLOUR_HELP)

    empty_text = "no quality measurement yet"

    def _build(self) -> None:
        item = self.getPlotItem()
        self.set_key(("before", "before"), ("after", "after"), symbol="●")
        self.curves = {w: pg.PlotDataItem([], [], name=w, symbol="o", symbolSize=4) for w in WHICH}
        for c in self.curves.values():
            item.addItem(c)
        self.bars = {w: pg.BarGraphItem(x=[], height=[], width=0.5) for w in WHICH}
        self.bar_labels = {w: pg.TextItem("", anchor=(0.5, 1.0)) for w in WHICH}
        for w in WHICH:
            item.addItem(self.bars[w])
            item.addItem(self.bar_labels[w], ignoreBounds=True)
        self.center_text = pg.TextItem("", anchor=(0.5, 0.5))
        item.addItem(self.center_text, ignoreBounds=True)
        # The quality budget's accuracy floor (before minus the allowed drop), when there is one.
        self.budget_line = pg.InfiniteLine(angle=0, movable=False)
        self.budget_line.setVisible(False)
        item.addItem(self.budget_line, ignoreBounds=True)
        # {"accuracy"|"agreement": {which: ([batch], [percent])}}
        self._live: dict[str, dict[str, tuple[list[int], list[float]]]] = {}
        self._final: Any = None  # the RunResult shown
        self.clear_data()

    def _restyle(self) -> None:
        t = self.theme
        for w in WHICH:
            colour = t.which_colour(w)
            self.curves[w].setPen(pg.mkPen(colour, width=2))
            self.curves[w].setSymbolBrush(pg.mkBrush(colour))
            self.curves[w].setSymbolPen(pg.mkPen(None))
            self.bars[w].setOpts(brush=pg.mkBrush(colour), pen=pg.mkPen(t.foreground, width=0.5))
            self.bar_labels[w].setColor(t.foreground)
        self.center_text.setColor(t.foreground)
        self.budget_line.setPen(pg.mkPen(t.warn, width=1.5, style=Qt.PenStyle.DashLine))
        if getattr(self, "_final", None) is not None:
            self.set_result(self._final)  # the fidelity text carries the old colour

    # -- live -------------------------------------------------------------------------------
    def add_point(self, which: str, done: Any, accuracy: Any, agreement: Any) -> None:
        """Buffer one running value; accuracy is preferred, agreement is the no-labels fallback."""
        if which not in WHICH:
            return
        if self._final is not None:
            self.clear_data()
        for metric, value in (("accuracy", num(accuracy)), ("agreement", num(agreement))):
            if value is None:
                continue
            xs, ys = self._live.setdefault(metric, {}).setdefault(which, ([], []))
            step = num(done)
            xs.append(int(step) if step and step > 0 else len(xs) + 1)
            ys.append(value * 100)

    def _live_series(self) -> tuple[str, dict]:
        metric = "accuracy" if self._live.get("accuracy") else "agreement"
        return metric, self._live.get(metric, {})

    def redraw_live(self) -> None:
        metric, series = self._live_series()
        for w in WHICH:
            xs, ys = series.get(w, ([], []))
            self.curves[w].setData(xs, ys)
        xs = [x for w in WHICH for x in series.get(w, ([], []))[0]]
        ys = [y for w in WHICH for y in series.get(w, ([], []))[1]]
        self.fit_live(xs, ys, y_range=percent_range(ys) if ys else None)
        label = "accuracy (%)" if metric == "accuracy" else "agreement with original (%)"
        self.set_axis_label("left", label)
        text = " · ".join(f"{w} {series[w][1][-1]:.1f}%" for w in WHICH if series.get(w))
        self.set_subtitle((f"evaluating… running {metric}: {text}", "muted"))

    # -- final ------------------------------------------------------------------------------
    def set_result(self, result: Any) -> None:
        """The final plot of a `RunResult`."""
        self._final = result
        for c in self.curves.values():
            c.setData([], [])
        acc = {w: num(getattr(result, w).accuracy) for w in WHICH}
        for i, w in enumerate(WHICH):
            a = acc[w]
            self.bars[w].setOpts(x=[i] if a is not None else [],
                                 height=[a * 100] if a is not None else [])
            self.bar_labels[w].setText(f"{a * 100:.1f}%" if a is not None else "")
            self.bar_labels[w].setPos(i, (a or 0) * 100 + 1.5)
        fid = fidelity_text(self._final)
        item = self.getPlotItem()
        self._show_legend(False)  # the axis names before/after
        if all(a is None for a in acc.values()) and not fid:
            self.center_text.setText("")
            self.set_subtitle()
            self.set_empty(True, "quality not measured")
            self.setToolTip(self.help)
            return
        self.set_empty(False)
        lines: list[tuple[str, Optional[str]]] = []
        if acc["before"] is not None and acc["after"] is not None:
            delta = (acc["after"] - acc["before"]) * 100
            lines.append((f"{acc['before'] * 100:.1f}% → {acc['after'] * 100:.1f}% "
                          f"({delta:+.1f} pt)", None))
            if fid:
                lines.append((fid, "muted"))
            self.center_text.setText("")
            self.set_axis_label("left", "accuracy (%)")
        else:
            # No labels: fidelity to the original is the only honest quality measure; one
            # accuracy alone is shown as its bar.
            head = "No labels: fidelity of the optimized model to the original"
            body = fidelity_text(self._final, sep="<br>") if fid else "nothing was measured"
            self.center_text.setHtml(
                f'<div style="text-align:center; color:{self.theme.foreground}; font-size:11pt">'
                f"<b>{head}</b><br>{body}</div>")
            doc = self.center_text.textItem.document()
            self.center_text.setTextWidth(-1)
            self.center_text.setTextWidth(doc.idealWidth() + 1)  # lets the lines centre
        self.center_text.setPos(0.5, 56)
        item.getAxis("bottom").setTicks(CATEGORY_TICKS)
        self.set_axis_label("bottom", "")
        self.setMouseEnabled(x=False, y=False)
        self.disableAutoRange()
        self.setXRange(-0.6, 1.6, padding=0)
        self.setYRange(-4, 112, padding=0)  # "0" stays labelled
        lines += self._budget(result, acc)
        self.set_subtitle(*lines)
        self._show_axes(any(a is not None for a in acc.values()))
        self.setToolTip(self.help + ("\n" + fid if fid else ""))

    def _budget(self, result: Any, acc: dict) -> list[tuple[str, Optional[str]]]:
        """The budget's verdict as a subtitle line (a failure in the warning colour) and its
        accuracy floor as a dashed line across the bars."""
        check = getattr(result, "budget", None)
        self.budget_line.setVisible(False)
        if check is None or not check.criteria:
            return []
        drop = check.budget.max_accuracy_drop
        if drop is not None and acc["before"] is not None:
            self.budget_line.setPos(acc["before"] * 100 - drop)
            self.budget_line.setVisible(True)
        dashed = " (dashed line)" if self.budget_line.isVisible() else ""
        return [(check.words() + dashed, "warn" if check.status != "meets" else "muted")]

    def _show_axes(self, show: bool) -> None:
        item = self.getPlotItem()
        item.showAxis("left", show)
        item.showAxis("bottom", show)
        item.showGrid(x=False, y=show, alpha=self.theme.grid_alpha)

    def clear_data(self) -> None:
        self._final = None
        self._live = {}
        for w in WHICH:
            self.curves[w].setData([], [])
            self.bars[w].setOpts(x=[], height=[])
            self.bar_labels[w].setText("")
        self.center_text.setText("")
        self.budget_line.setVisible(False)
        bottom = self.getPlotItem().getAxis("bottom")
        bottom.setTicks(None)
        bottom.setTickSpacing()
        self.set_axis_label("bottom", "evaluated batch #")
        self.set_axis_label("left", "accuracy (%)")
        self.setMouseEnabled(x=True, y=True)
        self._show_legend(True)
        self.set_empty(True)
        self.setToolTip(self.help)
        super().clear_data()

    def has_data(self) -> bool:
        if self._final is not None:
            accs = [num(getattr(self._final, w).accuracy) for w in WHICH]
            return all(a is not None for a in accs) or bool(fidelity_text(self._final))
        series = self._live_series()[1]
        return all(series.get(w, ([], []))[1] for w in WHICH)


class LossPlot(BasePlot):
    name = "loss"
    title = "Training loss (QAT)"
    help = "Loss per training batch during quantization-aware training; lower is better."

    def _build(self) -> None:
        self.curve = pg.PlotDataItem([], [])
        self.curve.setClipToView(True)
        self.curve.setDownsampling(auto=True, method="peak")
        self.getPlotItem().addItem(self.curve)
        self.set_axis_label("bottom", "training batch #")
        self.set_axis_label("left", "loss")
        self._loss: list[float] = []
        self._epoch: Optional[int] = None
        self.set_empty(True)

    def _restyle(self) -> None:
        self.curve.setPen(pg.mkPen(self.theme.after, width=1.5))

    def add_losses(self, values: list[tuple[float, Optional[int]]]) -> None:
        for loss, epoch in values:
            self._loss.append(loss)
            if epoch is not None:
                self._epoch = epoch
        self.curve.setData(self._loss)
        if self._loss:
            if self.is_empty():
                self.set_empty(False)
                self.enableAutoRange()
            epoch = f"epoch {self._epoch} · " if self._epoch is not None else ""
            self.set_subtitle((f"{epoch}loss {self._loss[-1]:.4g}", "muted"))

    def set_losses(self, losses: list[Any]) -> None:
        self.clear_data()
        self.add_losses([(v, None) for v in (num(x) for x in losses) if v is not None])

    def clear_data(self) -> None:
        self._loss = []
        self._epoch = None
        self.curve.setData([], [])
        super().clear_data()
        self.set_empty(True)

    def has_data(self) -> bool:
        return bool(self._loss)
