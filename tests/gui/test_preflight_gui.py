"""The recipe panel asks the engine's preflight: Run stays disabled with its words."""

from PySide6.QtCore import Qt

from tests.gui.test_float_params import click_check_box

NEEDS_LABELS = "needs labeled training data (give a data file with 'labels')"


def test_qat_without_labels_is_explained_and_cannot_run(window, qtbot):
    combo = window.data_chooser.combo
    combo.setFocus()
    with qtbot.waitSignal(window.modelLoaded, timeout=120_000):  # the labels dropped
        qtbot.keyClick(combo, Qt.Key.Key_End)  # "None — measure fidelity only"
    assert combo.currentText() == "None — measure fidelity only"
    opt = window.optimize
    panel = opt.techniques.panel("qat_int8")
    opt.scroll.ensureWidgetVisible(panel)
    click_check_box(qtbot, panel.check)
    assert panel.enabled
    assert opt.problem.isVisible() and opt.problem_is_error()
    assert opt.problem.text() == f"step 1 (qat_int8): {NEEDS_LABELS}"
    assert not opt.run_button.isEnabled() and not window.actions_by_name["run"].isEnabled()
    assert window.run() is False
    click_check_box(qtbot, panel.check)  # untick it: the panel's hint is back
    assert opt.problem.text() == "Enable at least one technique."
