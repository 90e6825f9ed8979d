"""The Sensitivity view (a dock, Tools > Layer sensitivity…): per layer (or transformer block)
of the open model, what one numeric format costs in quality when only it is converted and when
all but it are, and its share of the time; a sortable table beside a horizontal bar chart
(quality impact and time share side by side). Checking rows and "Keep checked in higher
precision" adds them to the current recipe's step of that format as its `skip` list; running
the recipe again shows the effect.

The measurement is the engine's "sensitivity" request: each unit arrives as a "partial" event;
Cancel keeps the units measured (the cancelled answer carries the report so far)."""

from __future__ import annotations

import math
from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (QCheckBox, QComboBox, QHBoxLayout, QLabel,
                               QPushButton, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from .plots import theme as th
from .safe_text import printable

#: The formats sensitivity measures (core/sensitivity.py FORMATS; torch-free copy).
FORMATS = ("dynamic_int8", "static_int8", "weight_only_int8", "weight_only_int4", "bf16")
#: Two-line headers where the words are longer than the numbers under them (narrow columns).
COLUMNS = ["unit", "kind", "params", "time\nFP32", "time\nafter", "only this", "all but\nthis"]
QUALITY_COLOR = "#D55E00"
TIME_COLOR = "#0072B2"


class _Number(QTableWidgetItem):
    """A cell that shows text and sorts by its number (unknown sorts last)."""

    def __init__(self, text: str, value: float) -> None:
        super().__init__(text)
        self.value = value if math.isfinite(value) else -math.inf

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.value < getattr(other, "value", -math.inf)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if math.isfinite(x) else "–"


def _short_name(name: str, limit: int = 13) -> str:
    """A chart label: the name's end past `limit` characters (what tells units apart), as the
    table elides it."""
    text = printable(name, newlines=False)
    return text if len(text) <= limit else "…" + text[-(limit - 1):].lstrip(".")


def _quality_cell(quality: Any, loss: float) -> QTableWidgetItem:
    """One number for a narrow column: the accuracy change when labels moved it ('-0.3 pt'),
    else the cosine ('cos 0.9987', what still tells units apart); the interval and the rest are
    in the cell's tooltip."""
    if quality is None:
        return _Number("–", loss)
    acc = quality.accuracy
    if acc is not None and math.isfinite(acc.change) and round(100 * acc.change, 1) != 0:
        text = acc.words().split(" (")[0]
    else:
        cos = quality.fidelity.cosine
        text = f"cos {cos:.4f}" if math.isfinite(cos) else "–"
    item = _Number(text, loss)
    item.setToolTip(printable(quality.words(), newlines=False))
    return item


class SensitivityView(QWidget):
    started = Signal()
    unitAdded = Signal(object)      # UnitSensitivity
    finished = Signal(object)       # SensitivityReport (cancelled=True when cut short)
    failed = Signal(str)

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.units: list[Any] = []
        self.report: Any = None
        self._job: Any = None
        #: Evaluation samples (None: the engine's default); tests make it small.
        self.samples: Optional[int] = None
        #: Read a complete earlier measurement of the same model, data and format.
        self.use_cache = True
        #: The format's parameters (as the recipe's step would have them; empty: defaults).
        self.params: dict = {}
        self.format = QComboBox()
        self.format.addItems(FORMATS)
        self.expand = QCheckBox("One row per layer (expand blocks)")
        self.run_button = QPushButton("Measure")
        self.cancel_button = QPushButton("Cancel")
        self.keep_button = QPushButton("Keep checked in higher precision")
        self.status = QLabel("Choose a format, then Measure.")
        self.status.setTextFormat(Qt.TextFormat.PlainText)
        self.status.setWordWrap(True)
        tips = {
            self.format: "The numeric format whose per-layer cost is measured",
            self.expand: "Transformer blocks (encoder.layer.3, ...) are one unit; tick to "
                         "measure each layer inside them",
            self.run_button: "Convert each unit alone, and every unit but it, and measure the "
                             "quality against the original; plus each unit's time share",
            self.cancel_button: "Stop; the units measured so far are kept",
            self.keep_button: "Add the checked units to the recipe's step of this format as "
                              "its skip list (they stay in higher precision); run it again "
                              "to see the effect",
        }
        for widget, tip in tips.items():
            widget.setToolTip(tip)
        for name, widget in (("sensitivityFormat", self.format),
                             ("sensitivityExpand", self.expand),
                             ("sensitivityRun", self.run_button),
                             ("sensitivityCancel", self.cancel_button),
                             ("sensitivityKeep", self.keep_button),
                             ("sensitivityStatus", self.status)):
            widget.setObjectName(name)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("sensitivityTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSortingEnabled(True)
        # Rows in rank order (most sensitive first) until the user sorts by a column.
        self.table.horizontalHeader().setSortIndicator(-1, Qt.SortOrder.AscendingOrder)
        self.table.horizontalHeader().setToolTip("Click a column to sort by it")
        # Long layer names lose their start: the end ("layers.3.linear2") tells units apart.
        self.table.setTextElideMode(Qt.TextElideMode.ElideLeft)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.viewport().installEventFilter(self)
        self.chart = pg.PlotWidget()
        self.chart.setObjectName("sensitivityChart")
        self.chart.setMinimumHeight(140)
        self.chart.setMinimumWidth(200)
        self.key = QLabel("")
        self.key.setTextFormat(Qt.TextFormat.RichText)
        self.key.setWordWrap(True)
        chart_box = QWidget()
        chart_lay = QVBoxLayout(chart_box)
        chart_lay.setContentsMargins(0, 0, 0, 0)
        chart_lay.addWidget(self.key)
        chart_lay.addWidget(self.chart, 1)
        table_box = QWidget()
        table_lay = QVBoxLayout(table_box)
        table_lay.setContentsMargins(0, 0, 0, 0)
        table_lay.addWidget(self.table, 1)
        keep_row = QHBoxLayout()  # under the table: it acts on the table's checked rows
        keep_row.addWidget(self.keep_button)
        keep_row.addStretch(1)
        table_lay.addLayout(keep_row)
        # The dock sits between the side docks (~700 px at 1024 wide): controls and status
        # above, so the table and the chart get the whole width, split where the user drags.
        self.body = body = QSplitter(Qt.Orientation.Horizontal)
        body.setObjectName("sensitivitySplitter")
        body.setChildrenCollapsible(False)
        body.addWidget(table_box)
        body.addWidget(chart_box)
        body.setStretchFactor(0, 3)
        body.setStretchFactor(1, 1)
        body.setSizes([700, 300])  # the table's seven columns need the room more
        # The check box may shrink (its text clipped) so that the view's minimum width stays
        # small: the window must still narrow to its compact arrangement with the dock open.
        self.expand.setMinimumWidth(40)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Format"))
        controls.addWidget(self.format)
        controls.addWidget(self.expand)
        controls.addWidget(self.run_button)
        controls.addWidget(self.cancel_button)
        controls.addStretch(1)
        lay = QVBoxLayout(self)
        lay.addLayout(controls)
        lay.addWidget(self.status)  # the whole width: a long status wraps, never clips
        lay.addWidget(body, 1)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.keep_button.clicked.connect(self.keep_checked)
        self.table.itemChanged.connect(lambda _item: self._sync())
        self._theme = th.current()
        th.ThemeWatcher(self, self._apply_theme)
        self._sync()

    # -- running --------------------------------------------------------------------------
    def refresh_formats(self) -> None:
        """Only the formats that apply to the open model, each disabled one with its reason."""
        loaded = getattr(self.win, "loaded", None)
        applies = dict(getattr(getattr(loaded, "info", None), "applicability", {}) or {})
        model = self.format.model()
        for i, name in enumerate(FORMATS):
            reason = applies.get(name)
            item = model.item(i)
            item.setEnabled(not reason)
            item.setToolTip(f"does not apply: {reason}" if reason else "")
        if not model.item(self.format.currentIndex()).isEnabled():
            usable = [i for i in range(len(FORMATS)) if model.item(i).isEnabled()]
            if usable:
                self.format.setCurrentIndex(usable[0])

    def checked_units(self) -> list[str]:
        out = []
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def _sync(self) -> None:
        running = self._job is not None
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.format.setEnabled(not running)
        self.expand.setEnabled(not running)
        self.keep_button.setEnabled(not running and bool(self.checked_units()))

    def start(self) -> bool:
        win = self.win
        if win.engine.busy or win.loaded is None:
            self.status.setText("Busy: wait for the current work to finish." if win.engine.busy
                                else "Open a model first.")
            return False
        fmt = self.format.currentText()
        self.units, self.report = [], None
        self.table.setRowCount(0)
        self._redraw()
        req = win.engine.sensitivity(win.loaded.model_id, fmt, dict(self.params),
                                     expand=self.expand.isChecked(),
                                     samples=self.samples, use_cache=self.use_cache)
        req.partial.connect(self._on_partial)
        req.finished.connect(self._on_finished)
        req.cancelled.connect(lambda _text: self._on_cancelled(req.cancel_data))
        req.failed.connect(self._on_failed)
        req.warned.connect(win.add_warning)
        self._job = req
        self.status.setText(f"Measuring each layer's sensitivity to {fmt}…")
        req.start()
        self._sync()
        self.started.emit()
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _on_partial(self, value: dict) -> None:
        from quantgui.core.results.sensitivity import UnitSensitivity
        if "unit" not in value:
            return
        unit = UnitSensitivity.from_json(value["unit"])
        self.units.append(unit)
        self._add_row(unit)
        self.unitAdded.emit(unit)
        self.status.setText(f"{len(self.units)} unit(s) measured…")
        self._redraw()

    def _done(self, report: Any, how: str) -> None:
        self._job = None
        self.report = report
        if report is not None:
            from quantgui.core.results.sensitivity import rank
            self.units = list(report.units)  # the report is the whole truth
            by_name = {u.name: u for u in self.units}
            self.table.setRowCount(0)
            for name in rank(report):  # most sensitive first
                self._add_row(by_name[name])
        self._redraw()
        self.status.setText(how)
        self._sync()
        if report is not None:
            self.finished.emit(report)

    def _on_finished(self, value: dict) -> None:
        from quantgui.core.results.sensitivity import SensitivityReport, rank
        report = SensitivityReport.from_json(value["sensitivity"])
        first = rank(report)[:1]
        full = report.full.words() if report.full else "–"
        self._done(report, f"{report.format} on {report.data}: all converted {full}"
                           + (f"; most sensitive: {first[0]}" if first else "")
                           + (" (from the cache)" if report.cached else ""))

    def _on_cancelled(self, data: Any) -> None:
        from quantgui.core.results.sensitivity import SensitivityReport
        kept = (data or {}).get("sensitivity")
        report = SensitivityReport.from_json(kept) if kept else None
        if report is None:  # the engine was restarted to stop it: what streamed in is it
            report = SensitivityReport("", self.format.currentText(), {}, "", "",
                                       list(self.units), cancelled=True)
        self._done(report, f"Cancelled: {len(report.units)} unit(s) kept.")

    def _on_failed(self, err: Any) -> None:
        self._done(None, f"Sensitivity failed: {err.text}")
        self.failed.emit(err.text)

    # -- the recipe -----------------------------------------------------------------------
    def keep_checked(self) -> list[str]:
        """Add the checked units to the recipe's step of the measured format (enabled if it
        was not) as skip patterns; returns the step's skip list."""
        from quantgui.core.layer_names import escape
        fmt = self.report.format if self.report is not None else self.format.currentText()
        panels = self.win.optimize.ensure_techniques()
        panel = panels.panel(fmt)
        if not panel.enabled:
            panel.set_enabled(True)
        skip = list(panel.values(only_changed=False).get("skip") or [])
        for name in self.checked_units():
            if escape(name) not in skip:
                skip.append(escape(name))
        panel.set_value("skip", skip)
        panel.set_expanded(True)
        self.status.setText(f"{fmt} keeps {len(skip)} unit(s) in higher precision: "
                            f"{', '.join(skip)}. Run the recipe to see the effect.")
        return skip

    # -- table and chart ------------------------------------------------------------------
    def _add_row(self, unit: Any) -> None:
        sorting = self.table.isSortingEnabled()
        self.table.setSortingEnabled(False)  # rows are filled whole, then sorted
        self.table.blockSignals(True)
        row = self.table.rowCount()
        self.table.insertRow(row)
        name = QTableWidgetItem(printable(unit.name, newlines=False))
        name.setData(Qt.ItemDataRole.UserRole, unit.name)
        name.setFlags(name.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        name.setCheckState(Qt.CheckState.Unchecked)
        name.setToolTip(printable(unit.name, newlines=False)
                        + "\nTick to keep this unit in higher precision (then 'Keep checked')")
        only = unit.only.loss if unit.only else math.nan
        but = unit.all_but.loss if unit.all_but else math.nan
        cells = [name, QTableWidgetItem(printable(unit.kind, newlines=False)),
                 _Number(_pct(unit.params_share), unit.params_share),
                 _Number(_pct(unit.time_share_before), unit.time_share_before),
                 _Number(_pct(unit.time_share_after), unit.time_share_after),
                 _quality_cell(unit.only, only), _quality_cell(unit.all_but, but)]
        for col, item in enumerate(cells):
            self.table.setItem(row, col, item)
        self.table.blockSignals(False)
        self.table.setSortingEnabled(sorting)
        self._size_columns()

    def _size_columns(self) -> None:
        """Each column as wide as its widest cell or header line (Qt's own sizing keeps room for
        a sort arrow in every header); the unit names get what is left, at least 90 px (elided
        at the start beyond that, the whole name is its tooltip): all seven columns fit a dock
        between the side docks."""
        table = self.table
        fm = table.fontMetrics()
        pad = 2 * table.style().pixelMetric(table.style().PixelMetric.PM_HeaderMargin) + 6
        widths = []
        for col in range(table.columnCount()):
            texts = COLUMNS[col].split("\n") + [table.item(r, col).text()
                                                for r in range(table.rowCount())
                                                if table.item(r, col) is not None]
            widths.append(max(fm.horizontalAdvance(t) for t in texts) + pad)
        left = table.viewport().width() - sum(widths[1:])
        widths[0] = min(widths[0] + 24, max(90, left))  # + 24: the check box
        for col, width in enumerate(widths):
            table.setColumnWidth(col, width)

    def eventFilter(self, obj: Any, event: Any) -> bool:  # noqa: N802 - Qt's name
        # The table's viewport resized (the window, the dock, the splitter, a scroll bar): the
        # unit column takes what the numbers leave.
        if obj is self.table.viewport() and event.type() == QEvent.Type.Resize \
                and self.table.rowCount():
            self._size_columns()
        return False

    def _apply_theme(self, theme: Any) -> None:
        self._theme = theme
        self._redraw()

    def _redraw(self) -> None:
        """Bars per unit, most sensitive at the top: its quality impact (only this unit
        converted, scaled to the largest) and its share of the time after, side by side."""
        from quantgui.core.results.sensitivity import SensitivityReport, rank
        theme = self._theme
        self.chart.clear()
        th.style_plot(self.chart, theme)
        # The accuracy drop where labels moved it; else the fidelity (1 - cosine), which
        # ranks layers whose effect rounding hides from the top-1 class.
        drops = [u.only.loss for u in self.units if u.only and math.isfinite(u.only.loss)]
        by_accuracy = bool(self.report is not None and self.report.metric == "accuracy"
                           and any(d > 0 for d in drops))
        what = "accuracy drop" if by_accuracy else "1 − cosine"
        self.key.setText(f'<span style="color:{QUALITY_COLOR}">&#9632;</span> quality impact, '
                         f'only this converted ({what}, relative to the largest) &nbsp; '
                         f'<span style="color:{TIME_COLOR}">&#9632;</span> share of the time '
                         f'after')
        if not self.units:
            return
        order = rank(SensitivityReport("", "", {}, "", "", list(self.units)))
        by_name = {u.name: u for u in self.units}
        units = [by_name[n] for n in reversed(order)]  # the most sensitive on top
        def loss(u: Any) -> float:
            value = (u.only.loss if by_accuracy else u.only.fidelity_loss) if u.only else 0.0
            return value if math.isfinite(value) else 0.0
        losses = [loss(u) for u in units]
        top = max([abs(x) for x in losses] + [1e-12])
        ys = list(range(len(units)))
        quality = [max(x, 0.0) / top for x in losses]
        time = [u.time_share_after if math.isfinite(u.time_share_after) else 0.0 for u in units]
        self.chart.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=[y + 0.18 for y in ys],
                                           height=0.34, width=quality,
                                           brush=pg.mkBrush(QUALITY_COLOR), pen=None))
        self.chart.addItem(pg.BarGraphItem(x0=[0] * len(ys), y=[y - 0.18 for y in ys],
                                           height=0.34, width=time,
                                           brush=pg.mkBrush(TIME_COLOR), pen=None))
        self.chart.getAxis("left").setTicks([[(y, _short_name(u.name))
                                              for y, u in zip(ys, units)]])
        self.chart.setXRange(0, 1.0, padding=0.02)
        self.chart.getAxis("bottom").setTicks([[(x, f"{x:g}") for x in (0, 0.5, 1)]])
        self.chart.setYRange(-0.6, len(units) - 0.4, padding=0)
        self.chart.setLabel("bottom", "fraction")


def add_sensitivity_action(win: Any) -> QAction:
    """Tools > Layer sensitivity…: the view and its dock are built on first use (the window
    starts without them: nothing to pay at launch for a tool most sessions never open);
    `win.sensitivity_view` is None until then."""
    from .tool_dock import add_tool_view
    return add_tool_view(
        win, name="sensitivity", title="Sensitivity", action_text="Layer sensitivity…",
        tooltip="Which layers a numeric format hurts, and what each costs in time; keep the "
        "sensitive ones in higher precision",
        make=SensitivityView, attr="sensitivity_view", height=380,
        before_show=lambda view: view.refresh_formats())


def shown_units(view: SensitivityView) -> list[str]:
    """The unit names in the table's current (sorted) order."""
    return [view.table.item(r, 0).data(Qt.ItemDataRole.UserRole)
            for r in range(view.table.rowCount())]


__all__ = ["SensitivityView", "add_sensitivity_action", "shown_units", "FORMATS"]
