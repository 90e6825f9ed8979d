"""Issue 9 (items 3, 4, 13) in the window: an inconclusive run says so and offers to measure
longer, a quality loss colours its history row and sits in the headline, errors read as what
they are, and the Suggest dialog says each thing once. Real runs on the digits examples."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QApplication

from quantgui.gui.plots.history_view import COL

LOAD_TIMEOUT_MS = RUN_TIMEOUT_MS = 120_000
SHOTS = "/tmp/quantgui-verdict"


def _open(w, qtbot, source="example:digits-mlp"):
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source(source)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)


def _click_run(w, qtbot):
    with qtbot.waitSignal(w.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(w.optimize.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    return blocker.args[0]


def _theme(w, name):
    """Switch through the View > Theme menu, as a user would."""
    menu = next(a.menu() for a in w.view_menu.actions() if a.menu() is not None)
    next(a for a in menu.actions() if a.text() == name).trigger()
    QApplication.processEvents()


def _shoot(w, name):
    import os
    os.makedirs(SHOTS, exist_ok=True)
    w.resize(1440, 900)
    QApplication.processEvents()
    w.grab().save(f"{SHOTS}/{name}.png")


@pytest.fixture
def light_after():
    yield
    from quantgui.gui.settings import apply_theme
    apply_theme(QApplication.instance(), "light")  # the app is shared by every test


def test_inconclusive_run_says_why_and_measures_longer(make_window, qtbot, light_after):
    # A budget far below one round: 2 rounds are timed, too few for any 95% claim.
    w = make_window(time_budget_s=0.0001, min_rounds=10)
    _open(w, qtbot)
    w.set_technique_enabled("inference_mode", True)
    result = _click_run(w, qtbot)
    assert result.timing.rounds == 2
    assert result.verdict.label == "inconclusive"
    seconds = result.verdict.suggested_budget_s
    assert seconds >= 1
    view = w.results
    assert view.inconclusive.isVisible() and view.measure_longer.isVisible()
    assert view.inconclusive.text() == "Inconclusive: " + result.verdict.inconclusive_reason
    assert view.inconclusive.text().startswith("Inconclusive: too few rounds: only 2 were timed")
    assert view.measure_longer.text() == f"Measure longer ({seconds:g} s)"
    assert view.latency_plot.verdict_text().startswith("inconclusive\nspeedup ")
    assert "inconclusive" in view.status.text()
    assert w.history_view.table.item(0, COL["Verdict"]).text().startswith("inconclusive")
    assert w.phase.text().endswith("— inconclusive")
    _shoot(w, "inconclusive-light")
    _theme(w, "Dark")
    _shoot(w, "inconclusive-dark")
    _theme(w, "Light")

    # Measure longer: the same recipe on the same model, with the suggested budget.
    with qtbot.waitSignal(w.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(view.measure_longer, Qt.MouseButton.LeftButton)
        assert w.running and not view.measure_longer.isEnabled()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    again = blocker.args[0]
    assert again.timing.budget_s == seconds
    assert again.recipe.to_json() == result.recipe.to_json() and again.source == result.source
    assert again.timing.rounds > 2
    assert len(w.history) == 2 and w.history_view.table.rowCount() == 2
    undecided = again.verdict.label == "inconclusive"
    assert view.measure_longer.isVisible() == undecided and view.measure_longer.isEnabled()
    # the first result, selected again from the history, still offers it
    w.history_view.select(0)
    assert view.measure_longer.isVisible()


def test_quality_loss_colours_the_history_row_and_the_headline(make_window, qtbot,
                                                                light_after):
    w = make_window()
    _open(w, qtbot)
    w.set_technique_enabled("prune", True)
    w.set_param("prune", "amount", 0.9)
    result = _click_run(w, qtbot)
    quality = result.verdict.quality
    assert quality.status == "degraded"
    assert quality.summary.startswith("accuracy dropped")
    drop = 100 * (result.before.accuracy - result.after.accuracy)
    assert f"accuracy dropped {drop:.1f} points" in quality.summary
    joiner = "but" if result.verdict.label == "faster" else "and"
    summary = f"{result.verdict.label}, {joiner} {quality.summary}"
    assert w.results.latency_plot.verdict_text().startswith(summary + "\nspeedup ")
    assert summary in w.results.status.text()
    hv = w.history_view
    assert hv.degraded_rows() == [0]
    assert hv.table.item(0, COL["Verdict"]).text().startswith(summary)
    light_bg = hv.plot.theme.degraded_bg
    assert all(hv.table.item(0, c).background().color() == QColor(light_bg)
               for c in range(hv.table.columnCount()))
    hv.table.clearSelection()
    _shoot(w, "quality-loss-light")
    _theme(w, "Dark")
    dark = hv.plot.theme
    assert dark.dark and dark.degraded_bg != light_bg
    bg = hv.table.item(0, 1).background().color()
    fg = hv.table.item(0, 1).foreground().color()
    assert bg == QColor(dark.degraded_bg) and fg == QColor(dark.foreground)
    assert fg.lightness() - bg.lightness() > 100  # light text on dark amber: readable
    _shoot(w, "quality-loss-dark")


def test_a_crash_inside_a_step_reads_as_a_bug_not_a_bare_exception(make_window, qtbot):
    torch_style = ("Expected d >= 0 to be true, but got false.  (Could this error message be "
                   "improved?  If so, please report an enhancement request to PyTorch.)")
    window = make_window(engine_patches={"raise": {"inference_mode": [
        ["IndexError", "pop from empty list"], ["RuntimeError", torch_style]]}})
    with qtbot.waitSignal(window.modelLoaded, timeout=RUN_TIMEOUT_MS):
        window.open_source(None)
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=5000)
    window.set_technique_enabled("inference_mode", True)
    with qtbot.waitSignal(window.runFailed, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(window.optimize.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=5000)
    expected = ("step 1 (inference_mode) failed: IndexError: pop from empty list — an "
                "unexpected failure inside this step (QuantGUI or PyTorch), not a problem with "
                "your files: try another technique for this model, and please report it")
    assert blocker.args[0] == expected
    assert window.dialog.isVisible() and window.dialog.text() == expected

    window.dialog.done(0)
    with qtbot.waitSignal(window.runFailed, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(window.optimize.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=5000)
    assert blocker.args[0].startswith("step 1 (inference_mode) failed: RuntimeError: Expected "
                                      "d >= 0 to be true, but got false. — an unexpected")
    assert "Could this error message be improved" not in window.dialog.text()


def test_suggest_cancel_dialog_says_each_thing_once(window, qtbot):
    w = window
    with qtbot.waitSignal(w.suggest.finished, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(w.optimize.suggest_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: "candidate 2/" in w.phase.text(), timeout=RUN_TIMEOUT_MS)
        qtbot.mouseClick(w.optimize.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=RUN_TIMEOUT_MS)
    rec = blocker.args[0]
    assert rec.cancelled and rec.trials
    text = w.dialog.text()
    w.dialog.grab().save(f"{SHOTS}/suggest-cancelled-dialog.png")
    assert "((" not in text and "))" not in text and "(cancelled)" not in text
    assert text.count("then cancelled") == 1
    if rec.best is not None:
        name = rec.best.recipe.describe()
        assert text.startswith(f"Suggested: {name} (the best found before the search was "
                               f"cancelled)\n\n")
        assert text.count(f"{rec.best.speedup:.2f}x") == 1
    else:
        assert text == f"No suggestion: keep the original\n\n{rec.detail}"
        assert text.count("keep the original") == 1


def test_data_chooser_none_reads_fidelity_only(window, qtbot):
    combo = window.data_chooser.combo
    combo.setFocus()
    with qtbot.waitSignal(window.modelLoaded, timeout=RUN_TIMEOUT_MS):  # the labels dropped
        qtbot.keyClick(combo, Qt.Key.Key_End)  # the last entry: "None — measure fidelity only"
    assert combo.currentText() == "None — measure fidelity only"
    text = window.summary.fields["data"].text()
    assert "(unlabeled: fidelity only)" in text and "))" not in text
