"""Fixtures for the desktop app: a window on temporary settings, short measurements, and a
guard that fails any test leaving a worker thread running or a window timer active."""

import pytest
from PySide6.QtCore import QSettings, QThread, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QMessageBox, QStatusBar

#: Small measurements so the GUI suite stays short (numbers are not what is tested here).
FAST = dict(time_budget_s=0.2, min_rounds=4, max_rounds=20, warmup=1, eval_limit=2)
LOAD_TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 120_000


@pytest.fixture
def qsettings(tmp_path):
    """Temporary settings: tests never read or write the user's own QSettings."""
    s = QSettings(str(tmp_path / "t.ini"), QSettings.Format.IniFormat)
    yield s
    s.sync()


def _dangling(windows) -> list[str]:
    from quantgui.gui.worker import running_threads
    problems = [f"worker thread still running: {t.objectName()}" for t in running_threads()]
    for w in windows:
        for timer in w.findChildren(QTimer):
            if timer.isActive() and not isinstance(timer.parent(), QStatusBar):
                # (QStatusBar's own timer only clears a timed message)
                problems.append(f"active QTimer owned by the window: {timer.objectName() or timer}")
        for thread in w.findChildren(QThread):
            if thread.isRunning():
                problems.append(f"QThread still running: {thread.objectName()}")
    return problems


@pytest.fixture
def make_window(qtbot, qsettings):
    """Factory for main windows (shown, on temporary settings, fast measurements). At
    teardown the test fails if a worker thread or a window-owned QTimer is still active."""
    from quantgui.gui.main_window import MainWindow
    made = []

    def make(settings=None, **overrides):
        w = MainWindow(settings if settings is not None else qsettings,
                       run_overrides={**FAST, **overrides})
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        return w

    yield make
    problems = _dangling(made)
    for w in made:  # close any dialog the test left open, then the window (cancels, waits)
        for dlg in w.findChildren(QDialog):
            if dlg.isVisible():
                dlg.reject() if not isinstance(dlg, QMessageBox) else dlg.done(0)
        w.close()
    QApplication.processEvents()
    from quantgui.gui.worker import running_threads
    assert not running_threads(), "threads still running after close"
    assert not problems, "; ".join(problems)


@pytest.fixture
def window(make_window, qtbot):
    """A window with the default example loaded and idle."""
    w = make_window()
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source(None)
    qtbot.waitUntil(lambda: not w.bridge.busy, timeout=5000)
    return w
