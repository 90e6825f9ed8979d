"""Fixtures for the desktop app: a window on temporary settings, short measurements (passed
to the engine process as run options), and a guard that fails any test leaving a window timer
active, or an engine process alive after its window closed."""

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
    problems = []
    for w in windows:
        for timer in w.findChildren(QTimer):
            if timer.isActive() and not isinstance(timer.parent(), QStatusBar):
                # (QStatusBar's own timer only clears a timed message)
                problems.append(f"active QTimer owned by the window: {timer.objectName() or timer}")
        for thread in w.findChildren(QThread):
            if thread.isRunning():
                problems.append(f"QThread still running: {thread.objectName()}")
    return problems


@pytest.fixture(scope="session")
def shared_engine(qapp):
    """One engine process for the windows of the whole GUI suite (starting one takes seconds:
    torch's import); a window given it leaves it running when it closes. At the end it is
    shut down and must be gone."""
    from quantgui.gui.engine_client import EngineClient
    from quantgui.gui.engine_outcomes import engine_pid_alive
    client = EngineClient()
    client.start()
    yield client
    client.shutdown()
    alive = [pid for pid in client.pids if engine_pid_alive(pid)]
    states = {pid: _state(pid) for pid in alive}
    assert not alive, f"shared engine processes {states} of {client.pids} outlived the suite"


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return " ".join(line.split(":", 1)[1].strip() for line in fh.read().splitlines()[:3])
    except OSError:
        return "gone"


@pytest.fixture
def make_window(qtbot, qsettings, shared_engine):
    """Factory for main windows (shown, on temporary settings, fast measurements) on the
    shared engine, or with `own_engine=True` on their own engine process. At teardown the test
    fails if a window-owned QTimer is still active, the shared engine is still busy, or an own
    engine process outlived its window."""
    from quantgui.gui.main_window import MainWindow
    made = []
    pids = []

    own = []

    def make(settings=None, own_engine=False, engine_patches=None, **overrides):
        """`engine_patches`: an own engine with these tests/gui/engine_patches.py patches."""
        engine = shared_engine
        if engine_patches is not None:
            from quantgui.gui.engine_client import EngineClient

            from tests.gui.engine_patches import command
            engine = EngineClient(command=command(engine_patches))
            own.append(engine)
        elif own_engine:
            engine = None
        w = MainWindow(settings if settings is not None else qsettings,
                       run_overrides={**FAST, **overrides}, engine=engine)
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
        if w.engine is not shared_engine:
            pids.extend(w.engine.pids)
    for engine in own:
        engine.shutdown()
    QApplication.processEvents()
    from quantgui.gui.engine_outcomes import engine_pid_alive
    alive = [pid for pid in pids if engine_pid_alive(pid)]
    assert not alive, f"engine processes still running after close: {alive}"
    assert not shared_engine.busy, "requests of a closed window still pending"
    assert not problems, "; ".join(problems)


@pytest.fixture
def window(make_window, qtbot):
    """A window with the default example loaded and idle."""
    w = make_window()
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source(None)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=5000)
    return w
