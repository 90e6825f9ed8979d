"""The per-layer profile of one sweep configuration as a horizontal bar chart: time per module
before vs after, the top N modules and "other" (LayerProfile.bars), from the engine's `profile`
request (progress phase "profile", cancellable)."""

from __future__ import annotations

from typing import Any, Optional

import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .plots import theme as th
from .safe_text import html_text, printable

#: Modules shown by name; the rest is one "other" bar.
TOP = 8
#: Calls per side: enough for a stable mean of a small model, short for a large one.
CALLS = 20


class ProfileChart(QWidget):
    started = Signal()
    profiled = Signal(object)    # LayerProfile
    failed = Signal(str)

    def __init__(self, win: Any, parent: Any = None) -> None:
        super().__init__(parent)
        self.win = win
        self.result: Any = None
        self.bars: list[tuple[str, float, float]] = []
        self._job: Any = None
        self.title = QLabel("Per-layer time: select a point in the table, then Profile point.")
        self.title.setTextFormat(Qt.TextFormat.RichText)  # strings from files via html_text
        self.title.setWordWrap(True)
        self.profile_button = QPushButton("Profile point")
        self.profile_button.setObjectName("sweepProfile")
        self.profile_button.setToolTip("Time each module of the selected configuration (or the "
                                       "first recipe at the largest batch), before vs after")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("sweepProfileCancel")
        self.cancel_button.setToolTip("Stop profiling")
        self.plot = pg.PlotWidget()
        self.plot.setObjectName("sweepProfilePlot")
        self.plot.setLabel("bottom", "ms per call (mean)")
        self.plot.setMinimumHeight(150)
        self.plot.setMouseEnabled(x=False, y=False)
        self.before_item: Optional[pg.BarGraphItem] = None
        self.after_item: Optional[pg.BarGraphItem] = None
        # The buttons go where the view puts them (`buttons`); the chart is the title and plot.
        self.buttons = QHBoxLayout()
        self.buttons.addWidget(self.profile_button)
        self.buttons.addWidget(self.cancel_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.title)
        lay.addWidget(self.plot, 1)
        self.cancel_button.clicked.connect(self.cancel)
        self._theme = th.current()
        th.ThemeWatcher(self, self._apply_theme)
        self.sync(False)

    @property
    def running(self) -> bool:
        return self._job is not None

    def sync(self, can_start: bool) -> None:
        self.profile_button.setEnabled(can_start and not self.running)
        self.cancel_button.setEnabled(self.running)

    def start(self, recipe: Any, batch: int, threads: int) -> bool:
        win = self.win
        if win.engine.busy or win.loaded is None:
            return False
        req = win.engine.submit("profile", {
            "model_id": win.loaded.model_id, "recipe": recipe.to_json(), "batch": batch,
            "threads": threads, "calls": CALLS}, kind="profile")
        what = html_text(f"{recipe.describe()}, batch {batch}, {threads} thread(s)")
        req.progress.connect(lambda items: self.title.setText(
            f"Profiling {what}: {html_text(items[-1].message)}"))
        req.finished.connect(self._on_finished)
        req.failed.connect(lambda err: self._end(f"Profile failed: {html_text(err.text)}",
                                                 err.text))
        req.cancelled.connect(lambda _t: self._end("Profile cancelled."))
        req.warned.connect(win.add_warning)
        self._job = req
        self.title.setText(f"Profiling {what}…")
        req.start()
        self.sync(False)
        self.started.emit()
        return True

    def cancel(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def _end(self, text: str, error: Optional[str] = None) -> None:
        self._job = None
        self.title.setText(text)
        self.sync(True)
        if error is not None:
            self.failed.emit(error)

    def _on_finished(self, value: dict) -> None:
        from quantgui.core.results.profile import LayerProfile
        self._job = None
        self.show_profile(LayerProfile.from_json(value["profile"]))
        self.sync(True)
        self.profiled.emit(self.result)

    def show_profile(self, profile: Any) -> None:
        self.result = profile
        self.bars = profile.bars(TOP)
        self.title.setToolTip(printable(
            f"Mean of {profile.calls} calls per side; total {profile.total_before_ms:.3f} ms "
            f"before, {profile.total_after_ms:.3f} ms after; the hooks add a little to each "
            f"layer. \"other\": the layers below the top {TOP}."))
        self._redraw()

    def _apply_theme(self, theme: Any) -> None:
        self._theme = theme
        self._redraw()

    def _redraw(self) -> None:
        theme = self._theme
        self.plot.clear()
        th.style_plot(self.plot, theme)
        self.before_item = self.after_item = None
        if not self.bars or self.result is None:
            return
        p = self.result
        self.title.setText(
            f"Per layer: {html_text(p.recipe)}, batch {p.batch}, {p.threads} thr &nbsp;"
            f'<span style="color:{theme.before}">&#9632;</span> before '
            f'<span style="color:{theme.after}">&#9632;</span> after')
        n = len(self.bars)
        # Largest at the top: row 0 is drawn highest.
        ys = [float(n - 1 - i) for i in range(n)]
        before = [b for _, b, _ in self.bars]
        after = [a for _, _, a in self.bars]
        self.before_item = pg.BarGraphItem(x0=0, y=[y + 0.2 for y in ys], height=0.38,
                                           width=before, brush=theme.before, pen=None,
                                           name="before")
        self.after_item = pg.BarGraphItem(x0=0, y=[y - 0.2 for y in ys], height=0.38,
                                          width=after, brush=theme.after, pen=None,
                                          name="after")
        self.plot.addItem(self.before_item)
        self.plot.addItem(self.after_item)
        labels = [(y, printable(name, newlines=False)[:32]) for y, (name, _, _) in
                  zip(ys, self.bars)]
        self.plot.getAxis("left").setTicks([labels, []])
        self.plot.setYRange(-0.7, n - 0.3, padding=0)
        self.plot.setXRange(0, max(before + after) * 1.05 or 1.0, padding=0)
