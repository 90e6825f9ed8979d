"""The quality budget in the window: set in the Optimize panel, carried by the recipe, judged in
the run, drawn on the accuracy plot and the history's latency/quality scatter (a variant that
fails it is a cross). Real runs on digits-mlp."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from quantgui.core.budget import QualityBudget

LOAD_TIMEOUT_MS = RUN_TIMEOUT_MS = 120_000
SHOTS = "/tmp/quantgui-budget"


def _choose(qtbot, combo, text):
    """Pick a combo box entry with the keyboard, as a user would."""
    combo.setFocus()
    index = combo.findText(text)
    while combo.currentIndex() != index:
        qtbot.keyClick(combo, Qt.Key.Key_Down if combo.currentIndex() < index else Qt.Key.Key_Up)


def _type(qtbot, spin, text):
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Return)


def _run(w, qtbot):
    with qtbot.waitSignal(w.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(w.optimize.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    return blocker.args[0]


def _shoot(w, name, size):
    os.makedirs(SHOTS, exist_ok=True)
    w.resize(*size)
    QApplication.processEvents()
    w.grab().save(f"{SHOTS}/{name}-{size[0]}x{size[1]}.png")


def _theme(w, name):
    menu = next(a.menu() for a in w.view_menu.actions() if a.menu() is not None)
    next(a for a in menu.actions() if a.text() == name).trigger()
    QApplication.processEvents()


def test_budget_is_set_run_and_drawn(make_window, qtbot):
    w = make_window()
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source("example:digits-mlp")
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    box = w.optimize.quality_budget
    assert box.budget() is None and not box.value.isEnabled()

    _choose(qtbot, box.kind, "max accuracy drop")
    _type(qtbot, box.value, "0.5")
    assert box.budget() == QualityBudget(max_accuracy_drop=0.5)
    w.set_technique_enabled("inference_mode", True)
    assert w.optimize.recipe().budget == QualityBudget(max_accuracy_drop=0.5)
    first = _run(w, qtbot)
    assert first.recipe.budget == QualityBudget(max_accuracy_drop=0.5)
    assert first.budget.status == "meets"  # the same predictions: CI (0, 0)
    plot = w.results.accuracy_plot
    assert plot.budget_line.isVisible()
    assert abs(plot.budget_line.value() - (100 * first.before.accuracy - 0.5)) < 1e-9
    assert "meets the budget: accuracy 0.0 pt" in plot.subtitle_text()
    assert "meets the budget" in w.results.status.text()

    # A cosine floor no cast can keep: the run fails it, and says so where the result is shown
    _choose(qtbot, box.kind, "min cosine")
    _type(qtbot, box.value, "1")
    w.set_technique_enabled("bf16", True)
    second = _run(w, qtbot)
    assert second.budget.status == "fails"
    assert "FAILS the quality budget" in w.results.status.text()
    sub = w.results.accuracy_plot.subtitle_text()
    assert "fails the budget: lowest cosine over 128 samples 0.9" in sub and "budget >= 1" in sub
    scatter = w.history_view.plot
    symbols = [spot.symbol() for spot in scatter.points.points()]
    assert symbols == ["o", "x"]  # the failing variant is a cross
    # the accuracy axis draws the accuracy budget of the first run; the subtitle names it
    ys = list(scatter.budget_line.getData()[1])
    assert ys == [100 * first.before.accuracy - 0.5] * 2
    assert "✕ fails its budget: 1 · ┈ budget accuracy drop <= 0.5 pt" in \
        scatter.subtitle_text()

    # a recipe with a budget shows it in the box (loading a recipe, applying a suggestion)
    from quantgui.core import Recipe
    recipe = Recipe.of("inference_mode")
    recipe.budget = QualityBudget(min_sqnr=25.0)
    w.set_recipe(recipe)
    assert box.kind.currentText() == "min SQNR" and box.value.value() == 25.0

    for size in ((1024, 640), (1440, 900)):
        _shoot(w, "light", size)
    _theme(w, "Dark")
    for size in ((1024, 640), (1440, 900)):
        _shoot(w, "dark", size)
    _theme(w, "Light")
