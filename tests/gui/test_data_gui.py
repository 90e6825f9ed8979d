"""Issue 13 in the window: the data chooser's "Your data" entry opens the data dialog (folder,
preprocessing form, preview strip of images with their class, or the first sentences); OK
reopens the model on that data; a run fills the per-class table and the flipped samples."""

from __future__ import annotations

import os

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialogButtonBox, QDockWidget, QFileDialog

from quantgui.gui.data_dialog import DataDialog
from quantgui.gui.model_panel import DATA_CUSTOM
from tests import data_fixtures as fx

LOAD_TIMEOUT_MS = RUN_TIMEOUT_MS = 120_000
SHOTS = "/tmp/quantgui-data"
CUSTOM_INDEX = 2


def _pick(qtbot, combo, index):
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=5000)
    rect = view.visualRect(combo.model().index(index, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=5000)


def _open_net(w, qtbot, tmp_path):
    weights, _, arch = fx.colour_net(tmp_path / "net")
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source(weights, arch=arch, input_shape=(4, 3, 16, 16))
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)


def _theme(w, name):
    menu = next(a.menu() for a in w.view_menu.actions() if a.menu() is not None)
    next(a for a in menu.actions() if a.text() == name).trigger()
    QApplication.processEvents()


def test_own_image_folder_from_the_chooser_to_per_class_results(make_window, qtbot, tmp_path,
                                                                monkeypatch):
    w = make_window()
    _open_net(w, qtbot, tmp_path)
    root = fx.image_folder(tmp_path / "photos", per_class=6, size=(20, 20))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(root)))

    _pick(qtbot, w.data_chooser.combo, CUSTOM_INDEX)
    dialog = w.dialog
    assert isinstance(dialog, DataDialog) and dialog.isVisible()
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    assert dialog.kind.text() == "image folder"
    # the strip takes one image of each class in turn
    assert dialog.thumbnail_labels() == ["cat", "dog", "fish"] * 2 + ["cat", "dog"]
    qtbot.keyClicks(dialog.resize_edit, "16")
    _pick(qtbot, dialog.normalize, 1)  # ImageNet mean/std
    dialog.eval_share.setValue(0.5)
    if os.environ.get("QUANTGUI_SHOTS"):
        _shots(dialog, "dialog")
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)

    spec = w.loaded_args["data"]
    assert spec.preprocess.resize == [16] and spec.preprocess.normalize == "imagenet"
    assert spec.eval_fraction == 0.5
    assert w.data_chooser.mode() == DATA_CUSTOM
    assert "resize 16" in w.data_chooser.path.text()
    # (the engine holds the data; the window knows its facts: decoding lazily is tested in core)
    assert w.loaded.test.samples == 9 and w.loaded.train.samples == 9 and w.loaded.test.labeled

    from PySide6.QtWidgets import QCheckBox
    enable = w.optimize.findChild(QCheckBox, "enable_dynamic_int8")
    enable.click()  # (the panel may sit in a collapsed tab of the right dock)
    assert enable.isChecked(), (enable.isEnabled(), enable.toolTip())
    finished, failed = [], []
    w.runFinished.connect(finished.append)
    w.runFailed.connect(failed.append)
    assert w.optimize.run_button.isEnabled(), (w.optimize.run_button.toolTip(), w.phase.text())
    qtbot.mouseClick(w.optimize.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(finished or failed), timeout=RUN_TIMEOUT_MS)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert not failed, failed
    result = finished[0]
    change = result.accuracy_change
    assert change is not None
    rows = w.data_view.per_class_rows()
    assert [r[0] for r in rows] == [c.name for c in change.per_class]
    assert rows[0][1] == f"{100 * change.per_class[0].before:.1f}%"
    assert w.data_view.headline.text().startswith("Accuracy change: ")
    assert "(95% CI" in w.data_view.headline.text()
    assert w.data_view.flips.count() == (len(change.flips) if change.flips_total else 1) + (
        1 if change.flips_total > len(change.flips) else 0)
    if os.environ.get("QUANTGUI_SHOTS"):
        dock = w.findChild(QDockWidget, "dataDock")
        dock.raise_()
        for size in ((1024, 640), (1440, 900)):
            for theme in ("Light", "Dark"):
                _theme(w, theme)
                w.resize(*size)
                QApplication.processEvents()
                w.grab().save(f"{SHOTS}/window-{size[0]}-{theme}.png")


def test_data_dialog_previews_sentences_and_refuses_a_bad_size(qtbot, tmp_path, monkeypatch):
    data = tmp_path / "reviews.csv"
    data.write_text("text,label\nthe film was wonderful,1\nthe food was cold,0\n")
    dialog = DataDialog(None)
    qtbot.addWidget(dialog)
    dialog.show()
    monkeypatch.setattr(QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: (str(data), "")))
    qtbot.mouseClick(dialog.file_button, Qt.MouseButton.LeftButton)
    assert dialog.kind.text() == "text"
    assert dialog.preview_text.text() == "[1] the film was wonderful\n[0] the food was cold"
    assert not dialog.resize_edit.isEnabled()  # image settings do not apply to text

    folder = fx.image_folder(tmp_path / "imgs", per_class=1)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    assert dialog.resize_edit.isEnabled() and len(dialog.thumbnails()) == 3
    qtbot.keyClicks(dialog.resize_edit, "12by12")
    qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "Resize: expected N or HxW" in dialog.error.text()


def _shots(widget, name):
    os.makedirs(SHOTS, exist_ok=True)
    widget.grab().save(f"{SHOTS}/{name}.png")


def test_fashion_entry_explains_then_opens_the_chosen_folder(make_window, qtbot, tmp_path,
                                                             monkeypatch):
    from PySide6.QtWidgets import QMessageBox
    from PySide6.QtGui import QAction
    from tests.test_fashion_example import fashion_files
    monkeypatch.setenv("QUANTGUI_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("QUANTGUI_FASHION_MNIST", "")  # restored after the test (the CLI sets it)
    w = make_window()
    _open_net(w, qtbot, tmp_path)  # the engine is up: the Examples menu is filled
    entry = w.findChild(QAction, "example_fashion-cnn")
    entry.trigger()
    box = w.dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert "does not ship with QuantGUI" in box.text() and "zalandoresearch" in box.text()
    folder = fashion_files(tmp_path / "data")
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(folder)))
    choose = next(b for b in box.buttons() if b.text() == "Choose folder…")
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(choose, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert w.loaded.info.source == "example:fashion-cnn"
    assert w.loaded.test.classes == 10  # named classes (their names live in the engine)
    assert w.app_settings.q.value("data/fashion_mnist") == str(folder)


def test_bad_data_from_the_dialog_is_one_error_dialog(make_window, qtbot, tmp_path,
                                                      monkeypatch):
    w = make_window()
    _open_net(w, qtbot, tmp_path)
    root = fx.image_folder(tmp_path / "photos", per_class=2)
    fx.image(root / "cat" / "big.png", 0, size=(20, 18))  # and no resize given
    monkeypatch.setattr(QFileDialog, "getExistingDirectory",
                        staticmethod(lambda *a, **k: str(root)))
    _pick(qtbot, w.data_chooser.combo, CUSTOM_INDEX)
    dialog = w.dialog
    qtbot.mouseClick(dialog.folder_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(w.modelFailed, timeout=LOAD_TIMEOUT_MS):
        qtbot.mouseClick(dialog.buttons.button(QDialogButtonBox.StandardButton.Ok),
                         Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert w.dialog.text() == (f"{root}: mixed image sizes (16x16, 20x18, ...): choose a resize "
                               f"(and a center crop) so every image has one size")
    w.dialog.done(0)
    assert w.loaded.test is None or not w.loaded.test.lazy  # the open model keeps its data
