"""Technique panels are generated from each technique's Params: widget per field type, ranges,
steps, choices, tooltips, applicability, and the recipe they build (validated before Run)."""

from dataclasses import dataclass
from typing import Optional

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QCheckBox, QComboBox,
                               QDoubleSpinBox, QLineEdit, QSpinBox)

from quantgui.core.params import param, specs
from quantgui.core.recipe import Recipe, Step
from quantgui.core.techniques import all_techniques
from quantgui.gui.technique_panels import AUTO, TechniquePanels, make_editor


@dataclass
class Sample:
    count: int = param(4, "How many.", min=1, max=64, step=2)
    ratio: float = param(0.25, "A ratio.", min=0.0, max=1.0, step=0.05)
    limit: Optional[int] = param(None, "Optional cap.", min=1, max=100)
    mode: str = param("a", "A choice.", choices=("a", "b"))
    engine: Optional[str] = param(None, "Optional choice.", choices=("x86", "onednn"))
    flag: bool = param(True, "A switch.")
    label: str = param("hello", "Free text.")
    note: Optional[str] = param(None, "Optional text.")


def editors():
    return {s.name: make_editor(s) for s in specs(Sample)}


def test_type_to_widget_map(qtbot):
    eds = editors()
    for ed in eds.values():
        qtbot.addWidget(ed.widget)
    count = eds["count"].widget
    assert isinstance(count, QSpinBox)
    assert (count.minimum(), count.maximum(), count.singleStep()) == (1, 64, 2)
    ratio = eds["ratio"].widget
    assert isinstance(ratio, QDoubleSpinBox)
    assert (ratio.minimum(), ratio.maximum()) == (0.0, 1.0)
    assert ratio.singleStep() == pytest.approx(0.05)
    assert isinstance(eds["mode"].widget, QComboBox)
    assert [eds["engine"].widget.itemText(i) for i in range(3)] == [AUTO, "x86", "onednn"]
    assert isinstance(eds["flag"].widget, QCheckBox)
    assert isinstance(eds["label"].widget, QLineEdit)
    # defaults round-trip, "auto" means None for optional fields
    assert {n: e.get() for n, e in eds.items()} == {
        "count": 4, "ratio": 0.25, "limit": None, "mode": "a", "engine": None, "flag": True,
        "label": "hello", "note": None}
    assert eds["limit"].widget.text() == AUTO
    eds["limit"].set(10)
    eds["engine"].set("onednn")
    eds["note"].set("x")
    assert (eds["limit"].get(), eds["engine"].get(), eds["note"].get()) == (10, "onednn", "x")
    for name, ed in eds.items():
        assert ed.widget.toolTip().startswith(ed.spec.help), name
    with pytest.raises(ValueError):
        eds["count"].set(1000)
    with pytest.raises(ValueError):
        eds["mode"].set("zzz")


def test_one_panel_per_technique_with_tooltips(qtbot):
    panels = TechniquePanels()
    qtbot.addWidget(panels)
    techs = all_techniques()
    assert list(panels.panels) == list(techs)
    for name, panel in panels.panels.items():
        assert panel.check.text() == techs[name].title
        assert panel.summary.text() == techs[name].summary
        assert set(panel.editors) == {s.name for s in specs(techs[name].Params)}
        for ed in panel.editors.values():
            assert ed.widget.toolTip(), f"{name}.{ed.spec.name} has no tooltip"
    prune = panels.panel("prune")
    amount = prune.editors["amount"].widget
    assert isinstance(amount, QDoubleSpinBox)
    assert (amount.minimum(), amount.maximum()) == (0.0, 0.95)


def test_recipe_follows_the_panels(qtbot):
    panels = TechniquePanels()
    qtbot.addWidget(panels)
    assert panels.recipe().steps == []
    with qtbot.waitSignal(panels.changed):
        panels.panel("channels_last").set_enabled(True)
    with qtbot.waitSignal(panels.changed):
        panels.panel("prune").set_enabled(True)
    with qtbot.waitSignal(panels.changed):
        panels.panel("prune").set_value("amount", 0.3)
    recipe = panels.recipe()
    assert [s.name for s in recipe.steps] == ["prune", "channels_last"]  # stage order
    assert recipe.steps[0].params == {"amount": pytest.approx(0.3)}
    assert recipe.steps[1].params == {}
    assert panels.panel("prune").expanded  # enabling shows the parameters


def test_set_recipe_and_problems(qtbot):
    panels = TechniquePanels()
    qtbot.addWidget(panels)
    problems = panels.set_recipe(Recipe([Step("prune", {"method": "ln_structured"}),
                                         Step("nope"), Step("bf16", {"bogus": 1})]))
    assert any("nope" in p for p in problems)
    assert any("bogus" in p for p in problems)
    assert [s.name for s in panels.recipe().steps] == ["prune", "bf16"]
    assert panels.recipe().steps[0].params == {"method": "ln_structured"}


def test_inapplicable_technique_is_disabled_with_reason(qtbot):
    panels = TechniquePanels()
    qtbot.addWidget(panels)
    panels.show()
    panels.panel("bf16").set_enabled(True)
    panels.set_applicability({"bf16": "no floating-point weights"})
    panel = panels.panel("bf16")
    assert not panel.enabled and not panel.check.isEnabled()
    assert panel.reason.isVisible() and "no floating-point weights" in panel.reason.text()
    with pytest.raises(ValueError, match="does not apply"):
        panel.set_enabled(True)
    panels.set_applicability({})
    assert panel.check.isEnabled() and not panel.reason.isVisible()


def test_window_panels_follow_the_model(window):
    info = window.loaded.info
    for name, panel in window.optimize.techniques.panels.items():
        reason = info.applicability.get(name)
        assert panel.check.isEnabled() == (not reason), name
        if reason:
            assert reason in panel.reason.text()


def test_enable_and_change_parameter_updates_recipe(window):
    window.set_technique_enabled("prune", True)
    window.set_param("prune", "amount", 0.3)
    window.set_param("prune", "method", "ln_structured")
    step = window.current_recipe().steps[0]
    assert step.name == "prune"
    assert step.params == {"amount": pytest.approx(0.3), "method": "ln_structured"}
    assert "Pruning (amount=0.3, method=ln_structured)" in window.optimize.recipe_label.text()
    assert window.optimize.run_button.isEnabled()


def test_invalid_combination_is_explained_before_run(window):
    window.set_technique_enabled("bf16", True)
    window.set_technique_enabled("fp16", True)
    problem = window.optimize.problem
    assert problem.isVisible()
    assert "only one numeric format step" in problem.text()
    assert not window.optimize.run_button.isEnabled()
    assert not window.actions_by_name["run"].isEnabled()
    assert window.run() is False
    window.set_technique_enabled("fp16", False)
    assert not problem.isVisible() and window.optimize.run_button.isEnabled()


def test_empty_recipe_cannot_run(window):
    assert window.current_recipe().steps == []
    assert "Enable at least one technique" in window.optimize.problem.text()
    assert window.run() is False


def test_recipe_save_and_load(window, tmp_path):
    window.set_technique_enabled("prune", True)
    window.set_param("prune", "amount", 0.25)
    window.set_technique_enabled("channels_last", True)
    path = tmp_path / "r.json"
    window.current_recipe().save(path)
    assert Recipe.load(path).to_json() == window.current_recipe().to_json()
    window.set_technique_enabled("prune", False)
    assert window.load_recipe(str(path)) == []
    assert window.current_recipe().to_json() == Recipe.load(path).to_json()


#: Buttons Qt makes itself (Qt 6.6 leaves the table corner button unnamed; later Qt: qt_...).
_QT_PRIVATE_BUTTONS = ("QTableCornerButton", "QDockWidgetTitleButton")


def test_every_control_has_a_tooltip(window):
    missing = []
    kinds = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit)
    for w in (w for kind in kinds for w in window.findChildren(kind)):
        if isinstance(w, QLineEdit) and isinstance(w.parent(), (QAbstractSpinBox, QComboBox)):
            continue  # the editor inside a spin box / combo: the outer widget has the tip
        if w.objectName().startswith("qt_") or w.parent() is window.toolbar \
                or w.metaObject().className() in _QT_PRIVATE_BUTTONS:
            continue  # Qt's own dock/menu buttons; toolbar buttons show their action's tooltip
        if not w.toolTip():
            missing.append(f"{type(w).__name__} {w.objectName()} {getattr(w, 'text', str)()}")
    assert not missing, missing
    for act in window.actions_by_name.values():
        assert act.toolTip()


def test_technique_panels_are_built_in_turns(make_window, qtbot):
    """The engine's techniques become panels one per event-loop turn (a 0 ms timer ticks
    between them), not in one stall when the first model opens; a model opened before they
    are all built finishes them at once."""
    from PySide6.QtCore import QTimer

    from quantgui.gui.recipe_panel import ENGINE_STARTING
    from tests.gui.conftest import LOAD_TIMEOUT_MS
    made = []
    counts = []
    tick = QTimer()
    tick.setInterval(0)
    tick.timeout.connect(lambda: made and made[0].optimize.techniques is not None and
                         counts.append(len(made[0].optimize.techniques.panels)))
    tick.start()
    made.append(make_window())
    w = made[0]
    qtbot.waitUntil(lambda: w.optimize.techniques is not None and w.optimize.techniques.complete,
                    timeout=LOAD_TIMEOUT_MS)
    tick.stop()
    n = len(w.optimize.specs)
    assert list(w.optimize.techniques.panels) == list(w.optimize.specs) and n > 5
    assert len({c for c in counts if 0 < c < n}) >= n // 2  # the loop turned between them
    assert w.optimize.problem_text() != ENGINE_STARTING

    other = make_window()  # the engine is ready: its first panel is built, the rest wait
    assert other.optimize.techniques is not None and not other.optimize.techniques.complete
    other.optimize.ensure_techniques()  # (what opening a model does)
    assert other.optimize.techniques.complete
    assert list(other.optimize.techniques.panels) == list(w.optimize.specs)


def test_skip_list_is_a_comma_separated_line_edit_that_builds_a_list(qtbot):
    panels = TechniquePanels()
    qtbot.addWidget(panels)
    panels.resize(420, 700)
    panels.show()
    panel = panels.panel("dynamic_int8")
    # on the box itself: the check box stretches across the header, its text ends earlier
    qtbot.mouseClick(panel.check, Qt.MouseButton.LeftButton,
                     pos=QPoint(8, panel.check.height() // 2))
    assert panel.enabled
    edit = panel.findChild(QLineEdit, "param_skip")
    assert edit is not None and edit.text() == "" and "none" in edit.toolTip()
    with qtbot.waitSignal(panels.changed):
        qtbot.keyClicks(edit, "encoder.layer.5.*, classifier,")
    assert panels.recipe().steps[0].params == {"skip": ["encoder.layer.5.*", "classifier"]}
    panels.set_recipe(Recipe([Step("bf16", {"skip": ["head"]})]))
    assert panels.panel("bf16").findChild(QLineEdit, "param_skip").text() == "head"
    assert panels.recipe().steps[0].params == {"skip": ["head"]}
