"""The session around the open model (issue 9, items 6, 14 and 15): Open Project asks before
dropping runs that are not saved, the data chooser shows the data really in use after a failed
load, and a normal session ends with status 0 even when a run was cancelled or a model failed to
open (only --demo turns those into a failure). Real widgets and menu actions; the file dialogs
are answered (monkeypatched)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMessageBox

from quantgui.core.export import load_project
from quantgui.gui.model_panel import DATA_BUILTIN, DATA_FILE, DATA_NONE

RUN_TIMEOUT_MS = 120_000


def _run(w, qtbot):
    w.set_technique_enabled("channels_last", True)
    with qtbot.waitSignal(w.runFinished, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(w.optimize.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)


def _answer(monkeypatch, open_path=None, save_path=None):
    """The next file dialogs return these paths; returns the list of dialogs shown."""
    shown = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(
        lambda *a, **k: shown.append("open") or (str(open_path or ""), "")))
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(
        lambda *a, **k: shown.append("save") or (str(save_path or ""), "")))
    return shown


def _kind_is(kind):
    return lambda k, _value: k == kind


def _save_first_box(w):
    box = w.dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.objectName() == "saveFirstBox"
    return box


# -- item 6: Open Project asks to save ------------------------------------------------------
def test_open_project_asks_before_dropping_unsaved_runs(window, qtbot, tmp_path, monkeypatch):
    w, B = window, QMessageBox.StandardButton
    other = tmp_path / "other.qgproj.json"
    _run(w, qtbot)
    _run(w, qtbot)
    _answer(monkeypatch, save_path=other)
    with qtbot.waitSignal(w.exports.finished, timeout=RUN_TIMEOUT_MS,
                          check_params_cb=_kind_is("save_project")):
        w.actions_by_name["save_project"].trigger()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    _run(w, qtbot)
    assert len(w.history) == 3

    # Cancel: nothing happens, no file dialog, the three runs stay.
    shown = _answer(monkeypatch, open_path=other)
    w.actions_by_name["open_project"].trigger()
    box = _save_first_box(w)
    assert box.text() == "1 run(s) of this session are not saved in a project."
    assert box.defaultButton() is box.button(B.Save)
    qtbot.mouseClick(box.button(B.Cancel), Qt.MouseButton.LeftButton)
    assert shown == [] and len(w.history) == 3 and not w.engine.busy

    # Don't Save: the project opens over them.
    w.actions_by_name["open_project"].trigger()
    box = _save_first_box(w)
    with qtbot.waitSignal(w.exports.finished, timeout=RUN_TIMEOUT_MS,
                          check_params_cb=_kind_is("open_project")):
        qtbot.mouseClick(box.button(B.Discard), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert shown == ["open"] and len(w.history) == 2

    # Just opened: nothing unsaved, so no question.
    with qtbot.waitSignal(w.exports.finished, timeout=RUN_TIMEOUT_MS,
                          check_params_cb=_kind_is("open_project")):
        w.actions_by_name["open_project"].trigger()
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert shown == ["open", "open"]

    # Save (the default): saved first, then the project opens.
    _run(w, qtbot)
    mine = tmp_path / "mine.qgproj.json"
    shown = _answer(monkeypatch, open_path=other, save_path=mine)
    w.actions_by_name["open_project"].trigger()
    box = _save_first_box(w)
    with qtbot.waitSignal(w.exports.finished, timeout=RUN_TIMEOUT_MS,
                          check_params_cb=_kind_is("open_project")):
        qtbot.mouseClick(box.button(B.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert shown == ["save", "open"]
    assert len(load_project(mine).entries) == 3 and len(w.history) == 2


def test_a_failed_save_opens_nothing(window, qtbot, tmp_path, monkeypatch):
    w, B = window, QMessageBox.StandardButton
    _run(w, qtbot)
    (tmp_path / "afile").write_text("x")
    shown = _answer(monkeypatch, open_path=tmp_path / "other.json",
                    save_path=tmp_path / "afile" / "s.qgproj.json")
    w.actions_by_name["open_project"].trigger()
    box = _save_first_box(w)
    with qtbot.waitSignal(w.exports.failed, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(box.button(B.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert shown == ["save"] and len(w.history) == 1
    assert w.dialog.windowTitle() == "Could not save project"


# -- item 14: the data chooser ---------------------------------------------------------------
def _pick(qtbot, combo, index):
    """Choose an entry of a combo box with the mouse: open its list, click the entry."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=5000)
    rect = view.visualRect(combo.model().index(index, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=5000)


def test_data_chooser_shows_the_data_in_effect_after_a_failed_load(window, qtbot, tmp_path,
                                                                   monkeypatch):
    w, chooser = window, window.data_chooser
    nan = tmp_path / "nan.npz"
    np.savez(nan, inputs=np.full((10, 1, 8, 8), np.nan, dtype=np.float32))
    good = tmp_path / "inputs_only.npz"
    np.savez(good, inputs=np.random.default_rng(0).random((10, 1, 8, 8)).astype(np.float32))
    assert chooser.mode() == DATA_BUILTIN

    _answer(monkeypatch, open_path=nan)
    with qtbot.waitSignal(w.modelFailed, timeout=RUN_TIMEOUT_MS):
        _pick(qtbot, chooser.combo, 1)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert "640 of 640 input values are NaN" in w.dialog.text()
    w.dialog.done(0)
    assert chooser.mode() == DATA_BUILTIN and not chooser.path.isVisible()
    assert w.loaded.test.labeled

    _answer(monkeypatch, open_path=good)
    with qtbot.waitSignal(w.modelLoaded, timeout=RUN_TIMEOUT_MS):
        _pick(qtbot, chooser.combo, 0)
        _pick(qtbot, chooser.combo, 1)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert chooser.mode() == DATA_FILE
    assert chooser.path.text() == f"{good}\nno labels: fidelity only"
    assert "unlabeled: fidelity only" in w.summary.fields["data"].text()

    # "None": fidelity only; a failed load of another file leaves that on show.
    with qtbot.waitSignal(w.modelLoaded, timeout=RUN_TIMEOUT_MS):  # the labels dropped
        _pick(qtbot, chooser.combo, 3)  # (2 is "Your data", issue 13)
    assert chooser.mode() == DATA_NONE and not w.engine.busy
    _answer(monkeypatch, open_path=nan)
    with qtbot.waitSignal(w.modelFailed, timeout=RUN_TIMEOUT_MS):
        _pick(qtbot, chooser.combo, 1)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    w.dialog.done(0)
    assert chooser.mode() == DATA_NONE and not w.loaded.test.labeled

    # Back to the built-in split: reopened with its labels.
    with qtbot.waitSignal(w.modelLoaded, timeout=RUN_TIMEOUT_MS):
        _pick(qtbot, chooser.combo, 0)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    assert chooser.mode() == DATA_BUILTIN and w.loaded.test.labeled

    # Cancelling the file dialog changes nothing either.
    _answer(monkeypatch, open_path=None)
    _pick(qtbot, chooser.combo, 1)
    assert chooser.mode() == DATA_BUILTIN and not w.engine.busy


# -- item 15: the exit status ----------------------------------------------------------------
#: Runs the real `quantgui` entry point (quantgui.gui.app.main) in a fresh process, driving the
#: window it makes from the event loop: the scenario ends with File > Quit.
DRIVER = textwrap.dedent('''
    import sys
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    app = QApplication(sys.argv[:1])
    from quantgui.gui import app as gui_app
    from quantgui.gui.main_window import MainWindow
    scenario, argv = sys.argv[1], sys.argv[2:]

    def quit_later(*_):
        QTimer.singleShot(100, lambda: win.actions_by_name["quit"].trigger())

    def start_run(_loaded):  # next turn: the load still counts as running until it ends
        win.set_technique_enabled("channels_last", True)
        QTimer.singleShot(0, win.run)

    def hook():
        global win
        win = next(w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow))
        if scenario == "bad-model":
            win.modelFailed.connect(quit_later)
        else:
            if scenario == "cancel":
                win.modelLoaded.connect(start_run)
            win.runProgress.connect(lambda p: p.phase == "time" and win.cancel())
            win.runCancelled.connect(quit_later)

    QTimer.singleShot(0, hook)
    code = gui_app.main(argv)
    print("exit status", code, flush=True)
    sys.exit(code)
''')


@pytest.mark.slow
@pytest.mark.parametrize("scenario, extra, expected", [
    ("bad-model", ["broken.pt"], 0),
    ("cancel", [], 0),
    ("demo-cancel", ["--demo"], 1),
])
def test_exit_status(tmp_path, scenario, extra, expected):
    (tmp_path / "broken.pt").write_bytes(b"this is not a model")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", DRIVER, scenario, *extra], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=300)
    assert f"exit status {expected}" in proc.stdout, proc.stderr[-3000:]
    assert proc.returncode == expected, proc.stderr[-3000:]
