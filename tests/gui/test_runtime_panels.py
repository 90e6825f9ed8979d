"""The runtime techniques' panels (issue 11) are generated from their Params like every other:
their controls exist with their choices, clicking them builds the recipe step, and without the
package the panel is disabled and says the one-line install command."""

from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from quantgui.core.techniques import all_techniques
from quantgui.gui.technique_panels import TechniquePanels
from tests.gui.test_float_params import click_check_box


def _panels(qtbot):
    panels = TechniquePanels()
    qtbot.addWidget(panels)
    panels.resize(520, 1500)
    panels.show()
    return panels


def test_runtime_panels_have_their_params(qtbot):
    panels = _panels(qtbot)
    ort = panels.panel("onnxruntime")
    assert ort.check.text() == all_techniques()["onnxruntime"].title == "ONNX Runtime"
    quantize = ort.editors["quantize"].widget
    assert isinstance(quantize, QComboBox)
    assert [quantize.itemText(i) for i in range(quantize.count())] == ["none", "dynamic",
                                                                        "static"]
    assert isinstance(ort.editors["per_channel"].widget, QCheckBox)
    assert isinstance(ort.editors["skip_layers"].widget, QLineEdit)
    assert isinstance(ort.editors["calibration_samples"].widget, QSpinBox)
    for name in ("onnxruntime", "openvino"):
        shapes = panels.panel(name).editors["shapes"].widget
        assert [shapes.itemText(i) for i in range(shapes.count())] == ["dynamic", "fixed"]
        assert shapes.currentText() == "dynamic"  # the saved file takes any batch by default
    ov = panels.panel("openvino")
    assert set(ov.editors) == {"precision", "source", "hint", "skip_layers",
                               "calibration_samples", "shapes"}
    assert set(panels.panel("aoti").editors) == {"dynamic", "max_autotune"}


def test_clicking_the_onnxruntime_panel_builds_its_step(qtbot):
    panels = _panels(qtbot)
    ort = panels.panel("onnxruntime")
    with qtbot.waitSignal(panels.changed):
        click_check_box(qtbot, ort.check)
    assert ort.expanded
    combo = ort.editors["quantize"].widget
    with qtbot.waitSignal(panels.changed):
        combo.setCurrentIndex(combo.findText("dynamic"))
    shapes = ort.editors["shapes"].widget
    with qtbot.waitSignal(panels.changed):
        shapes.setCurrentIndex(shapes.findText("fixed"))
    recipe = panels.recipe()
    assert [s.name for s in recipe.steps] == ["onnxruntime"]
    assert recipe.steps[0].params == {"quantize": "dynamic", "shapes": "fixed"}
    panels.grab().save("/tmp/runtime_panel.png")


def test_missing_package_disables_the_panel_with_the_install_line(qtbot):
    panels = _panels(qtbot)
    reason = 'onnxruntime is not installed: pip install "quantgui[onnx]"'
    panels.set_applicability({"onnxruntime": reason})
    panel = panels.panel("onnxruntime")
    assert not panel.check.isEnabled()
    assert panel.reason.isVisible() and 'pip install "quantgui[onnx]"' in panel.reason.text()
    panels.grab().save("/tmp/runtime_panel_missing.png")
