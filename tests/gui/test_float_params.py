"""Float parameters show and keep their real value (QAT's lr of 1e-4 was shown as 0.00 and read
back as 0.0): every default of every technique round-trips through its editor exactly, typing
scientific notation works, arrows step sensibly, and QAT runs from its panel."""

import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QStyle, QStyleOptionButton

from quantgui.core.params import param, specs
from quantgui.core.recipe import Recipe, Step
from quantgui.core.techniques import all_techniques
from quantgui.gui.float_edit import FloatSpinBox, float_text, nice_step
from quantgui.gui.technique_panels import AUTO, TechniquePanels, make_editor

RUN_TIMEOUT_MS = 180_000


def click_check_box(qtbot, box):
    """Click on the box itself (the check box stretches across the panel: its centre is
    empty space, which Qt does not count as a hit)."""
    style_opt = QStyleOptionButton()
    box.initStyleOption(style_opt)
    rect = box.style().subElementRect(QStyle.SubElement.SE_CheckBoxIndicator, style_opt, box)
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=rect.center())


def shown(widget):
    """What the editor displays, as text."""
    if isinstance(widget, QComboBox):
        return widget.currentText()
    if isinstance(widget, QCheckBox):
        return str(widget.isChecked())
    return widget.text()


def expected_text(spec):
    if spec.default is None:
        return AUTO if not (spec.type is str and not spec.choices) else ""
    if spec.type is bool:
        return str(spec.default)
    if spec.type is list:  # a line edit of comma-separated items
        return ", ".join(spec.default)
    return float_text(spec.default) if spec.type is float else str(spec.default)


@pytest.fixture
def panels(qtbot):
    p = TechniquePanels()
    qtbot.addWidget(p)
    p.show()
    return p


def test_every_default_round_trips_through_its_editor(panels):
    checked = 0
    for name, tech in all_techniques().items():
        panel = panels.panel(name)
        defaults = {s.name: s.default for s in specs(tech.Params)}
        for spec in specs(tech.Params):
            ed = panel.editors[spec.name]
            value = ed.get()
            assert value == spec.default and type(value) is type(spec.default), \
                (name, spec.name, value, spec.default)
            assert shown(ed.widget) == expected_text(spec), (name, spec.name)
            checked += 1
        assert panel.values(only_changed=False) == defaults, name
        # Enabled alone, the panel's step carries no changed value; every default, written
        # out in a recipe, reads back unchanged.
        panels.set_recipe(Recipe([Step(name, dict(defaults))]))
        assert panels.recipe().steps == [Step(name, {})], name
        assert panel.values(only_changed=False) == defaults, name
        assert panels.recipe().validate()  # valid as the panel builds it
    assert checked >= 20  # the scan saw the parameters
    assert panels.panel("qat_int8").editors["lr"].widget.text() == "0.0001"


def test_typing_scientific_notation_into_the_learning_rate(panels, qtbot):
    panels.panel("qat_int8").set_enabled(True)
    lr = panels.panel("qat_int8").editors["lr"].widget
    assert isinstance(lr, FloatSpinBox)
    lr.setFocus()
    qtbot.keyClick(lr.lineEdit(), Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    with qtbot.waitSignal(panels.changed):
        qtbot.keyClicks(lr.lineEdit(), "3e-5")
        qtbot.keyClick(lr.lineEdit(), Qt.Key.Key_Return)
    assert panels.recipe().steps == [Step("qat_int8", {"lr": 3e-5})]
    assert lr.text() == "3e-5"
    # Letters are refused as they are typed; the value stays.
    qtbot.keyClicks(lr.lineEdit(), "x")
    assert lr.text() == "3e-5"
    # Arrow keys step along 1-2-5 values over the decades of the range.
    qtbot.keyClick(lr, Qt.Key.Key_Up)
    assert lr.value() == 5e-5 and lr.text() == "5e-5"
    qtbot.keyClick(lr, Qt.Key.Key_Up)
    assert lr.value() == 1e-4
    for _ in range(2):
        qtbot.keyClick(lr, Qt.Key.Key_Down)
    assert lr.value() == 2e-5
    assert panels.recipe().steps == [Step("qat_int8", {"lr": 2e-5})]


def test_out_of_range_text_goes_back_to_the_last_value(panels, qtbot):
    lr = panels.panel("qat_int8").editors["lr"].widget
    lr.setFocus()
    qtbot.keyClick(lr.lineEdit(), Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClicks(lr.lineEdit(), "5")  # above the maximum 0.1: not taken
    qtbot.keyClick(lr.lineEdit(), Qt.Key.Key_Return)
    assert lr.value() == 1e-4
    assert panels.panel("qat_int8").values() == {}


def test_linear_steps_stay_tidy(panels, qtbot):
    amount = panels.panel("prune").editors["amount"].widget
    assert not amount.log and amount.singleStep() == 0.05
    for _ in range(2):
        qtbot.keyClick(amount, Qt.Key.Key_Up)
    assert amount.value() == 0.6 and amount.text() == "0.6"  # not 0.6000000000000001
    for _ in range(20):
        qtbot.keyClick(amount, Qt.Key.Key_Up)
    assert amount.value() == 0.95  # the maximum


def test_float_text_and_steps():
    for v in (1e-4, 3e-5, 0.5, 0.05, 1e-7, 0.1 + 0.2, 123456.789, 2.5e-12, 1e22):
        assert float(float_text(v)) == v
    assert [float_text(v) for v in (1e-4, 3e-5, 0.5, 1e-7, 1e22)] == [
        "0.0001", "3e-5", "0.5", "1e-7", "1e22"]
    assert [nice_step(1e-4, n) for n in (1, 2, 3, -1, -2, -3)] == [
        2e-4, 5e-4, 1e-3, 5e-5, 2e-5, 1e-5]
    assert nice_step(3e-5, 1) == 5e-5 and nice_step(3e-5, -1) == 2e-5
    assert nice_step(0.07, 1) == 0.1 and nice_step(1e-7, -1) == 5e-8


@pytest.mark.parametrize("value", [1e-4, 3e-5, 0.1 + 0.2, 1 / 3, 1.2345678901234567e-7,
                                   math.pi * 1e-6])
def test_any_value_is_kept_exactly(qtbot, value):
    from dataclasses import dataclass

    @dataclass
    class P:
        rate: float = param(1e-3, "A rate.", min=1e-9, max=1.0)
        auto_rate: float | None = param(None, "Optional.", min=0.0, max=1.0, step=0.1)
    eds = {s.name: make_editor(s) for s in specs(P)}
    for ed in eds.values():
        qtbot.addWidget(ed.widget)
    eds["rate"].set(value)
    assert eds["rate"].get() == value
    assert eds["rate"].widget.text() == float_text(value)
    assert eds["auto_rate"].get() is None and eds["auto_rate"].widget.text() == AUTO
    eds["auto_rate"].widget.stepBy(1)  # from "auto" up to the real range
    assert eds["auto_rate"].get() == 0.0
    eds["auto_rate"].set(value if value <= 1 else 0.5)
    assert eds["auto_rate"].get() == (value if value <= 1 else 0.5)


@pytest.mark.slow
def test_qat_runs_from_its_panel(window, qtbot):
    opt = window.optimize
    panel = opt.techniques.panel("qat_int8")
    opt.scroll.ensureWidgetVisible(panel)
    click_check_box(qtbot, panel.check)
    assert panel.enabled and panel.expanded
    assert panel.editors["lr"].widget.text() == "0.0001"
    assert not opt.problem.isVisible(), opt.problem.text()
    assert opt.run_button.isEnabled()
    assert window.current_recipe().steps == [Step("qat_int8", {})]
    with qtbot.waitSignal(window.runFinished, timeout=RUN_TIMEOUT_MS) as blocker:
        qtbot.mouseClick(opt.run_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert [s.name for s in result.recipe.steps] == ["qat_int8"]
    assert result.after.accuracy is not None and result.after.accuracy > 0.9
