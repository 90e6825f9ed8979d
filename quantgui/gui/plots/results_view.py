"""ResultsView: the size, latency and accuracy plots of one run, live and final.

Progress arrives on the GUI thread many times a second; `on_progress` only buffers it and a
~30 Hz timer (running only while a run is live) pushes the buffered values into the existing
plot items, so the window stays responsive however fast the engine reports.

The line above the plots always says what is on them: the run in progress, the result shown
(with its model, and a note when that is not the model open in the window), or what the window
is busy with (`set_activity`, e.g. Suggest). A run that fails or is cancelled puts the last real
result back (`abandon_run`) instead of leaving empty plots. The plots sit in two rows (size and
latency over accuracy) or, when the view is short, in one row, so each keeps room for its
title and axes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..safe_text import plain_label, printable
from . import export as ex
from .accuracy_plot import AccuracyPlot, LossPlot
from .base import BasePlot, model_name, num, recipe_label
from .latency_plot import LatencyPlot
from .size_plot import SizePlot
from .turns import paint_later, release_all

REDRAW_MS = 33
#: The redraw timer stops itself after this many empty ticks (a run that went quiet, failed or
#: was cancelled must not leave it running); the next progress event restarts it.
IDLE_TICKS = 30
PHASE_TEXT = {"load": "loading", "apply": "applying", "calibrate": "calibrating",
              "train": "training", "convert": "converting", "compile": "compiling",
              "time": "timing", "evaluate": "evaluating", "export": "exporting"}
IDLE_TEXT = "No run yet. Choose a model and a recipe, then press Run."
#: Below this height (px) the plots go in one row, two rows would leave each too short;
#: unless that row would give a plot less than ONE_ROW_MIN_WIDTH px.
ONE_ROW_BELOW = 440
ONE_ROW_MIN_WIDTH = 190


#: Offered when a result carries no suggestion of its own (saved before there was one).
FALLBACK_LONGER_S = 12.0


class ResultsView(QWidget):
    """Plots of one run. See docs: start_run -> on_progress* -> show_result; clear().

    An inconclusive result shows why under the status line, with a "Measure longer" button
    that asks (`measureLongerRequested(result, seconds)`) for the same recipe again with the
    time budget the engine suggested."""

    measureLongerRequested = Signal(object, float)  # (RunResult, seconds)
    shown = Signal(object)  # the RunResult now on the plots (None: cleared)

    def __init__(self, parent: Optional[QWidget] = None) -> None:
        super().__init__(parent)
        self.size_plot = SizePlot()
        self.latency_plot = LatencyPlot()
        self.accuracy_plot = AccuracyPlot()
        self.loss_plot = LossPlot()
        self.loss_plot.hide()

        self.status = plain_label(IDLE_TEXT)
        self.status.setObjectName("resultsStatus")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status.setToolTip("What the current run is doing, or the recipe of the result shown")
        # Room for two lines always: a status wrapping to a second line (a result's summary)
        # or back would re-lay out and repaint every plot just as a result arrives.
        self.status.setMinimumHeight(2 * self.status.fontMetrics().lineSpacing())
        self.inconclusive = plain_label("")
        self.inconclusive.setObjectName("inconclusiveReason")
        self.inconclusive.setWordWrap(True)
        self.inconclusive.setSizePolicy(QSizePolicy.Policy.Ignored,
                                        QSizePolicy.Policy.Preferred)
        self.measure_longer = QPushButton("Measure longer")
        self.measure_longer.setObjectName("measureLongerButton")
        self.measure_longer.setToolTip("Run the same recipe on the same model again with a "
                                       "longer time budget, so the confidence interval can "
                                       "decide")
        self.measure_longer.clicked.connect(self._on_measure_longer)
        undecided = QHBoxLayout()
        undecided.addWidget(self.inconclusive, 1)
        undecided.addWidget(self.measure_longer)
        self._longer_s = 0.0
        self._show_undecided(None)
        self.top_row, self.bottom_row = QHBoxLayout(), QHBoxLayout()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.status)
        layout.addLayout(undecided)
        layout.addLayout(self.top_row, 1)
        layout.addLayout(self.bottom_row, 1)
        self._one_row: Optional[bool] = None
        self._arrange(False)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

        #: Redraws buffered progress at a bounded rate; active only while a run is live.
        self.redraw_timer = QTimer(self)
        self.redraw_timer.setInterval(REDRAW_MS)
        self.redraw_timer.timeout.connect(self._flush)
        self._pending: list[Any] = []
        self._idle_ticks = 0
        self._state = "idle"  # idle | running | done
        self._recipe = ""
        self._result: Any = None                        # the RunResult on the plots
        self._shown: Optional[tuple[Any, str]] = None     # the last real result and recipe
        self._previous: Optional[tuple[Any, str]] = None  # what a failed run puts back
        self._open_model: Optional[str] = None
        self._activity: Optional[str] = None

    # -- layout -----------------------------------------------------------------------------
    def one_row(self) -> bool:
        return bool(self._one_row)

    def _arrange(self, one_row: bool) -> None:
        if one_row == self._one_row:
            return
        self._one_row = one_row
        plots = (self.size_plot, self.latency_plot, self.accuracy_plot, self.loss_plot)
        for row in (self.top_row, self.bottom_row):
            for plot in plots:
                row.removeWidget(plot)
        if one_row:
            for plot in plots:
                self.top_row.addWidget(plot, 1)
        else:
            self.top_row.addWidget(self.size_plot, 2)
            self.top_row.addWidget(self.latency_plot, 3)
            self.bottom_row.addWidget(self.accuracy_plot, 3)
            self.bottom_row.addWidget(self.loss_plot, 2)
        layout = self.layout()
        layout.setStretchFactor(self.bottom_row, 0 if one_row else 1)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._rearrange()

    def _rearrange(self) -> None:
        n = 3 + (not self.loss_plot.isHidden())
        self._arrange(self.height() < ONE_ROW_BELOW and self.width() >= ONE_ROW_MIN_WIDTH * n)

    # -- interface --------------------------------------------------------------------------
    def grab(self, *args: Any) -> Any:
        release_all()  # a plot waiting for its turn to paint would be blank
        return super().grab(*args)

    def plots(self) -> dict[str, BasePlot]:
        return {"size": self.size_plot, "latency": self.latency_plot,
                "accuracy": self.accuracy_plot}

    def has_data(self) -> dict[str, bool]:
        return {name: plot.has_data() for name, plot in self.plots().items()}

    def start_run(self, recipe_text: str) -> None:
        if self._state != "running":
            self._previous = self._shown
        self._activity = None
        self._clear_plots(keep_room=True)
        self._recipe = recipe_text or ""
        self._state = "running"
        self._set_status(f"Running {self._recipe or 'recipe'}…")
        self._idle_ticks = 0
        self.redraw_timer.start()

    def on_progress(self, progress: Any) -> None:
        if self._state == "done":
            return  # a late event after the result: the result is what stays on screen
        if self._state == "idle":
            self.start_run(self._recipe)
        self._pending.append(progress)
        if not self.redraw_timer.isActive():
            self._idle_ticks = 0
            self.redraw_timer.start()

    def stop_run(self, message: str = "") -> None:
        """The run ended without a result (failed/cancelled): keep what was drawn, stop redraws."""
        if self._state == "running":
            self._flush()
            self._state = "done"
        self.redraw_timer.stop()
        self._pending.clear()
        if message:
            self._set_status(message)

    def abandon_run(self, message: str) -> None:
        """The run failed or was cancelled: nothing of it stays; the last real result (if any)
        goes back on the plots and `message` says what happened."""
        self.redraw_timer.stop()
        self._pending.clear()
        previous, self._previous = self._previous, None
        self._state, self._recipe = "idle", ""  # the abandoned run lends nothing to what follows
        if previous is not None:
            self.show_result(*previous)
        else:
            self._clear_plots()
            self._shown = None
        self._activity = None
        self._set_status(self._state_text(message))

    def show_result(self, result: Any, recipe_text: str = "") -> None:
        """The final plots of a `RunResult` (the run just finished, or a history row)."""
        live = self._state == "running"
        if live:
            self._flush()  # keep what was buffered (e.g. the loss curve of this run)
        self.redraw_timer.stop()
        self._pending.clear()
        self._state = "done"
        self._result = result
        self.size_plot.set_result(result)
        self.latency_plot.set_result(result)
        self.accuracy_plot.set_result(result)
        if not live:  # a result keeps no loss curve: only a live QAT run draws one
            self.loss_plot.set_losses([])
        self.loss_plot.setVisible(self.loss_plot.has_data())
        self._rearrange()
        paint_later(self.latency_plot, self.accuracy_plot, self.loss_plot)  # size: now
        self._shown = (result, recipe_text or (self._recipe if live else ""))
        self._set_status(self._state_text())
        self._show_undecided(result)
        self.shown.emit(result)

    def clear(self) -> None:
        self.redraw_timer.stop()
        self._clear_plots()
        self._state = "idle"
        self._recipe = ""
        self._shown = self._previous = None
        self._activity = None
        self._set_status(IDLE_TEXT)
        self.shown.emit(None)

    def set_open_model(self, source: Optional[str]) -> None:
        """The model open in the window: a result of another model says so."""
        self._open_model = source
        if self._state == "done":
            self._set_status(self._state_text())

    def set_activity(self, text: Optional[str]) -> None:
        """What the window is busy with outside a run (Suggest); None: back to the result."""
        self._activity = text
        self._set_status(text if text else self._state_text())

    def status_text(self) -> str:
        return self.status.text()

    def _state_text(self, prefix: str = "") -> str:
        if self._state == "done" and self._shown is not None:
            result, recipe = self._shown
            text = _summary(result, recipe or recipe_label(result))
            source = result.source
            if source:
                text += f" · model {model_name(source)}"
                if self._open_model and source != self._open_model:
                    # The Model panel describes the open model, not this result's.
                    text += f" — not the open model ({model_name(self._open_model)})"
            return f"{prefix} Showing the last result: {text}" if prefix else text
        return prefix or IDLE_TEXT

    def result(self) -> Any:
        """The `RunResult` on the plots (None: none)."""
        return self._result

    def export_png(self, path: str | Path, which: Optional[str] = None) -> list[Path]:
        """One PNG per plot: `path` itself for one plot, `stem-NAME.png` for all."""
        return [ex.export_png(p, out, p.theme.background) for p, out in self._targets(path, which)]

    def export_svg(self, path: str | Path, which: Optional[str] = None) -> list[Path]:
        return [ex.export_svg(p, out, p.theme.background, f"QuantGUI {p.title}")
                for p, out in self._targets(path, which)]

    # -- internals --------------------------------------------------------------------------
    def _targets(self, path: str | Path, which: Optional[str]) -> list[tuple[BasePlot, Path]]:
        plots = dict(self.plots(), loss=self.loss_plot)
        if which is not None:
            if which not in plots:
                raise ValueError(f"unknown plot {which!r}; choose one of {', '.join(plots)}")
            return [(plots[which], Path(path))]
        if not self.loss_plot.has_data():
            del plots["loss"]
        return [(plot, ex.suffixed(path, name)) for name, plot in plots.items()]

    def _show_undecided(self, result: Any, keep_room: bool = False) -> None:
        """The inconclusive reason and the Measure-longer button, or nothing. `keep_room`: a
        row on show keeps its room while hidden (a run starting: its result will likely need
        it again; the plots are not re-laid out twice)."""
        undecided = result is not None and result.verdict.label == "inconclusive"
        for w in (self.inconclusive, self.measure_longer):
            policy = w.sizePolicy()
            retain = keep_room and w.isVisible()
            if policy.retainSizeWhenHidden() != retain:
                policy.setRetainSizeWhenHidden(retain)
                w.setSizePolicy(policy)
        if undecided:
            reason = result.verdict.inconclusive_reason
            self.inconclusive.setText("Inconclusive: " + (
                reason if reason else "the speedup's 95% confidence interval is too wide "
                "to decide"))
            suggested = num(result.verdict.suggested_budget_s)
            self._longer_s = suggested if suggested else FALLBACK_LONGER_S
            self.measure_longer.setText(f"Measure longer ({self._longer_s:g} s)")
            self.measure_longer.setToolTip(
                f"Run the same recipe on the same model again with a {self._longer_s:g} s time "
                f"budget, so the confidence interval can decide")
        self.inconclusive.setVisible(undecided)
        self.measure_longer.setVisible(undecided)

    def _on_measure_longer(self) -> None:
        if self._result is not None:
            self.measureLongerRequested.emit(self._result, float(self._longer_s))

    def set_measure_enabled(self, enabled: bool) -> None:
        """The window disables the button while engine work runs."""
        self.measure_longer.setEnabled(enabled)

    def _clear_plots(self, keep_room: bool = False) -> None:
        self._pending.clear()
        self._result = None
        self._show_undecided(None, keep_room)
        for plot in (*self.plots().values(), self.loss_plot):
            plot.clear_data()
        self.loss_plot.hide()
        self._rearrange()
        paint_later(self.latency_plot, self.accuracy_plot)

    def _set_status(self, text: str) -> None:
        self.status.setText(printable(text))

    def _flush(self) -> None:
        """Push everything buffered since the last tick into the plots (one setData each)."""
        if not self._pending:
            self._idle_ticks += 1
            if self._idle_ticks >= IDLE_TICKS:
                self.redraw_timer.stop()
            return
        self._idle_ticks = 0
        pending, self._pending = self._pending, []
        samples: list[tuple[str, float]] = []  # in measurement order (before/after interleave)
        losses: list[tuple[float, Optional[int]]] = []
        evaluated = False
        last = None
        for p in pending:
            phase = getattr(p, "phase", None)
            values = getattr(p, "values", None)
            values = values if isinstance(values, dict) else {}
            last = p
            if phase == "time":
                ms = num(values.get("latency_ms"))
                if ms is not None and values.get("which") in ("before", "after"):
                    samples.append((values["which"], ms))
            elif phase == "evaluate":
                self.accuracy_plot.add_point(values.get("which"), getattr(p, "done", None),
                                             values.get("accuracy"), values.get("agreement"))
                evaluated = True
            elif phase == "train":
                loss = num(values.get("loss"))
                if loss is not None:
                    epoch = values.get("epoch")
                    losses.append((loss, epoch if isinstance(epoch, int) else None))
            elif phase == "size":
                if "before_bytes" in values or "after_bytes" in values:
                    self.size_plot.set_sizes(values.get("before_bytes"), values.get("after_bytes"))
        self.latency_plot.add_samples(samples)
        if evaluated:
            self.accuracy_plot.redraw_live()
        if losses:
            self.loss_plot.add_losses(losses)
            if self.loss_plot.isHidden():
                self.loss_plot.show()
                self._rearrange()
        if last is not None:
            self._show_progress(last)

    def _show_progress(self, p: Any) -> None:
        phase = getattr(p, "phase", "") or ""
        desc = getattr(p, "message", "") or PHASE_TEXT.get(phase, phase)
        values = getattr(p, "values", None)
        step = values.get("step") if isinstance(values, dict) else None
        if step:
            desc = f"{desc} {step}"
        total = num(getattr(p, "total", None))
        done = num(getattr(p, "done", None)) or 0
        if total and total > 0:
            desc += f" {int(min(done, total))}/{int(total)}"
        self._set_status(f"Running {self._recipe or 'recipe'} — {desc}")


def _summary(result: Any, recipe: str) -> str:
    parts = [f"Result of {recipe}" if recipe else "Result"]
    if result.verdict.known:
        parts.append(result.summary())  # the verdict with the quality lost, if any
    check = getattr(result, "budget", None)
    if check is not None and check.criteria:  # failing the budget is said here, not in a tip
        parts.append({"meets": "meets the budget", "fails": "FAILS the quality budget"}.get(
            check.status, "budget undecided"))
    s = num(result.timing.speedup)
    if s is not None:
        parts.append(f"speedup {s:.2f}x")
    r = num(result.size_ratio)
    if r is not None:
        parts.append(f"size {r:.2f}x")
    if result.noisy:
        parts.append("⚠ noisy timing")
    return " — ".join(parts[:1]) + (": " + ", ".join(parts[1:]) if len(parts) > 1 else "")
