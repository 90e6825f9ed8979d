""""Suggest a recipe": the engine's `recommend` on the window's one worker bridge.

Progress goes to the status bar (phase "recommend", message = the candidate being measured).
Cancel returns the best found so far: `recommend` never raises `Cancelled`, but the bridge
reports any job whose token was cancelled as cancelled and drops its value, so the job also
leaves its value in a box this controller reads when the cancel arrives. At the end every
trial that produced a result joins the session history, the best recipe is applied to the
panels, and a non-blocking message names it with its speedup.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

#: Seconds of timing per candidate at most (the panel's budget is for a single run).
MAX_BUDGET_S = 1.0


def _recommend_job(loaded: Any, options: Any, box: dict, task: Any,
                   max_candidates: Optional[int] = None) -> tuple:
    from quantgui.core import recommend_recipe as recommend
    rec = recommend(loaded, options=options, task=task, max_candidates=max_candidates)
    rows = [(t.recipe.describe(), t.result) for t in rec.trials if t.result is not None]
    box["value"] = (rec, rows)  # read on the GUI thread after the thread has ended
    return box["value"]


class RecommendActions(QObject):
    started = Signal()
    finished = Signal(object)   # Recommendation (cancelled=True when cut short)
    failed = Signal(str)

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.last: Any = None          # the last Recommendation
        self._box: dict = {}
        self._candidate = ""
        win.optimize.suggestRequested.connect(lambda: self.start())

    def sync(self) -> None:
        ok = not self.win.bridge.busy and self.win.loaded is not None
        self.win.actions_by_name["suggest"].setEnabled(ok)
        self.win.optimize.suggest_button.setEnabled(ok)

    def start(self, max_candidates: Optional[int] = None) -> bool:
        """Start the search; False (nothing happens) when busy or no model is open."""
        win = self.win
        if win.bridge.busy or win.loaded is None:
            win.phase.setText("Busy: wait for the current work to finish." if win.bridge.busy
                              else "Open a model first.")
            return False
        panel = win.optimize
        options = panel.options(**{"time_budget_s": min(MAX_BUDGET_S, panel.budget.value()),
                                   **win.run_overrides})
        self._box = {}
        self._candidate = ""
        job = win.bridge.submit("recommend", _recommend_job, win.loaded, options, self._box,
                                max_candidates=max_candidates)
        job.progress.connect(self._on_progress)
        job.finished.connect(self._on_finished)
        job.failed.connect(self._on_failed)
        job.cancelled.connect(self._on_cancelled)
        job.warned.connect(win.add_warning)
        panel.set_running(True)
        win.progress.setRange(0, 0)
        win.progress.show()
        win.phase.setText("Suggesting a recipe: choosing candidates…")
        # The centre says what is happening; the plots keep the last real result meanwhile.
        win.results.set_activity(
            "Suggesting a recipe: choosing candidates… " +
            ("The plots show the last result until the best candidate is known."
             if win.results.result() is not None else
             "The plots show the best candidate when it is known."))
        job.start()
        self.started.emit()
        return True

    def _on_progress(self, batch: list) -> None:
        self.win.show_progress(batch)
        for p in batch:
            if p.phase == "recommend":
                self._candidate = (f"candidate {min(p.done + 1, p.total or 0)}/{p.total}: "
                                   f"{p.message}" if p.done < (p.total or 0) else p.message)
        if self._candidate:
            text = f"Suggesting — {self._candidate} · {batch[-1].describe()}"
            self.win.phase.setText(text)
            self.win.results.set_activity(text)

    def _end(self) -> None:
        self.win.optimize.set_running(False)
        self.win.progress.hide()
        self.win.results.set_activity(None)

    def _on_finished(self, value: tuple) -> None:
        self._end()
        self._apply(*value)

    def _on_cancelled(self) -> None:
        self._end()
        value = self._box.get("value")
        if value is None:  # cancelled before recommend returned (e.g. while importing)
            self.win.phase.setText("Suggestion cancelled before any candidate finished.")
            from quantgui.core import Recommendation
            self.last = Recommendation(best=None, cancelled=True)
            self.finished.emit(self.last)
            return
        self._apply(*value)

    def _on_failed(self, err: Any) -> None:
        self._end()
        self.win.show_error("Suggesting a recipe failed", err.message, err.details)
        self.failed.emit(err.message)

    def _apply(self, rec: Any, rows: list) -> None:
        win = self.win
        self.last = rec
        for text, result in rows:
            win.exports.add_run(text, result)
        if rec.best is not None:
            problems = win.set_recipe(rec.best.recipe)
            if rec.best.result is not None:
                win.results.show_result(rec.best.result, rec.best.recipe.describe())
            head = (f"Suggested: {rec.best.recipe.describe()}"
                    + (" (the best found before the search was cancelled)" if rec.cancelled
                       else ""))
            if problems:
                head += "\nNot applied: " + "; ".join(problems)
        else:
            head = "No suggestion: keep the original"
        win.phase.setText(f"{head.splitlines()[0]} — {rec.detail}")
        # The head names the recipe, the detail its numbers: each said once.
        box = QMessageBox(QMessageBox.Icon.Information, "Suggested recipe",
                          f"{head}\n\n{rec.detail}", QMessageBox.StandardButton.Ok, win)
        box.setDetailedText(rec.table())
        win.show_dialog(box)
        win.sync_actions()
        self.finished.emit(rec)
