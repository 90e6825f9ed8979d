""""Suggest a recipe": the engine's `recommend`, a request to the engine process.

Progress goes to the status bar (phase "recommend", message = the candidate being measured).
Each trial that produced a result arrives as a partial event and joins the session history at
once. Cancel returns the best found so far: the engine's "cancelled" error carries the
Recommendation in its data. At the end the best recipe is applied to the panels, and a
non-blocking message names it with its speedup.
"""

from __future__ import annotations

from typing import Any, Optional

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QMessageBox

#: Seconds of timing per candidate at most (the panel's budget is for a single run).
MAX_BUDGET_S = 1.0


class RecommendActions(QObject):
    started = Signal()
    finished = Signal(object)   # Recommendation (cancelled=True when cut short)
    failed = Signal(str)

    def __init__(self, win: Any) -> None:
        super().__init__(win)
        self.win = win
        self.last: Any = None          # the last Recommendation
        self._candidate = ""
        win.optimize.suggestRequested.connect(lambda: self.start())

    def sync(self) -> None:
        ok = not self.win.engine.busy and self.win.loaded is not None
        self.win.actions_by_name["suggest"].setEnabled(ok)
        self.win.optimize.suggest_button.setEnabled(ok)

    def start(self, max_candidates: Optional[int] = None) -> bool:
        """Start the search; False (nothing happens) when busy or no model is open."""
        win = self.win
        if win.engine.busy or win.loaded is None:
            win.phase.setText("Busy: wait for the current work to finish." if win.engine.busy
                              else "Open a model first.")
            return False
        panel = win.optimize
        options = panel.options(**{"time_budget_s": min(MAX_BUDGET_S, panel.budget.value()),
                                   **win.run_overrides})
        self._candidate = ""
        params = {"model_id": win.loaded.model_id, "options": options}
        budget = panel.quality_budget.budget()
        if budget is not None:  # the search keeps to the user's budget
            params["budget"] = budget.to_json()
        if max_candidates is not None:
            params["max_candidates"] = int(max_candidates)
        req = win.engine.submit("recommend", params)
        req.progress.connect(self._on_progress)
        req.partial.connect(self._on_trial)
        req.finished.connect(self._on_finished)
        req.failed.connect(self._on_failed)
        req.cancelled.connect(lambda _how: self._on_cancelled(req.cancel_data))
        req.warned.connect(win.add_warning)
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
        req.start()
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

    def _on_trial(self, value: dict) -> None:
        """A candidate finished: its run joins the history now (its variant is kept)."""
        from quantgui.core import Trial
        trial = Trial.from_json(value.get("trial"))
        if trial.result is not None:
            self.win.exports.add_run(trial.recipe.describe(), trial.result)

    def _on_finished(self, value: dict) -> None:
        from quantgui.core import Recommendation
        self._end()
        self.win.session.evicted(value.get("evicted") or [])
        self._apply(Recommendation.from_json(value["recommendation"]))

    def _on_cancelled(self, data: dict) -> None:
        from quantgui.core import Recommendation
        self._end()
        if not data.get("recommendation"):  # cancelled before any candidate finished
            self.win.phase.setText("Suggestion cancelled before any candidate finished.")
            self.last = Recommendation(best=None, cancelled=True)
            self.finished.emit(self.last)
            return
        self.win.session.evicted(data.get("evicted") or [])
        self._apply(Recommendation.from_json(data["recommendation"]))

    def _on_failed(self, err: Any) -> None:
        self._end()
        self.win.show_error("Suggesting a recipe failed", err.message, err.details)
        self.failed.emit(err.message)

    def _apply(self, rec: Any) -> None:
        win = self.win
        self.last = rec
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
