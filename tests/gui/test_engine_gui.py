"""The window with the real engine process: a crash (abort, exit, the process killed) or a
cancel the engine cannot answer in time restarts the engine, keeps the session history, says
what was running and why, and the next run works; the GUI process never imports torch."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from tests.gui.conftest import LOAD_TIMEOUT_MS, RUN_TIMEOUT_MS
from tests.gui.engine_models import misbehaving_model

QUICK = "channels_last"


def _run(qtbot, w, signal_name="runFinished"):
    with qtbot.waitSignal(getattr(w, signal_name), timeout=RUN_TIMEOUT_MS) as blocker:
        assert w.run() is True
    return blocker.args[0] if blocker.args else None


def _open(qtbot, w, **kwargs):
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS) as blocker:
        w.open_source(**kwargs)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)
    return blocker.args[0]


def _crash_dialog(w, reason):
    box = w.dialog
    assert isinstance(box, QMessageBox) and box.isVisible()
    assert box.windowTitle() == "The engine stopped during the run"
    assert f"The engine stopped ({reason}) during the run of " in box.text()
    assert "the session history is kept" in box.text()
    box.done(0)


def test_killed_engine_keeps_history_and_restarts(window, qtbot):
    w = window
    w.set_technique_enabled(QUICK, True)
    first = _run(qtbot, w)
    assert w.session.export_problem(0) is None  # its variant lives in the engine
    old_pid = w.engine.pid
    w.run_overrides.update(time_budget_s=30.0, max_rounds=100_000)
    seen = []
    w.runProgress.connect(lambda p: seen.append(p.phase))
    with qtbot.waitSignal(w.runStarted):
        w.run()
    qtbot.waitUntil(lambda: "time" in seen, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):  # re-opened
        with qtbot.waitSignal(w.runFailed, timeout=LOAD_TIMEOUT_MS) as blocker:
            os.kill(old_pid, signal.SIGKILL)
    message = blocker.args[0]
    assert message.startswith(f"The engine stopped (SIGKILL, probably out of memory) during "
                              f"the run of {QUICK}.")
    _crash_dialog(w, "SIGKILL, probably out of memory")
    assert w.history == [(QUICK, first)]              # the session is kept
    assert w.engine.pid != old_pid and w.loaded is not None
    assert "open again" in w.phase.text()
    # the old engine's variants are gone: Export model says why
    export = w.actions_by_name["export_model"]
    assert not export.isEnabled() and "re-run" in export.toolTip()
    assert w.actions_by_name["export_report"].isEnabled()
    w.run_overrides.update(time_budget_s=0.2, max_rounds=20)
    qtbot.waitUntil(lambda: not w.engine.busy)
    second = _run(qtbot, w)                           # the next run works
    assert len(w.history) == 2 and second.variant_id
    assert w.actions_by_name["export_model"].isEnabled()


@pytest.mark.parametrize("behaviour, reason", [("abort", "SIGABRT"), ("exit", "exit code 3")])
def test_model_that_kills_the_engine(make_window, qtbot, tmp_path, behaviour, reason):
    w = make_window()
    _open(qtbot, w, **misbehaving_model(tmp_path, behaviour))
    w.set_technique_enabled("inference_mode", True)
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):  # re-opened after restart
        message = _run(qtbot, w, "runFailed")
    assert f"The engine stopped ({reason}) during the run of inference_mode." in message
    _crash_dialog(w, reason)
    assert "restarted" in w.warnings_button.toolTip()
    _open(qtbot, w, source=None)          # the window keeps working: another model runs
    w.set_technique_enabled(QUICK, True)
    assert _run(qtbot, w).after.latency.median_ms > 0


def test_cancel_the_engine_cannot_answer_restarts_it(make_window, qtbot, tmp_path):
    w = make_window()
    _open(qtbot, w, **misbehaving_model(tmp_path, "hang"))
    w.set_technique_enabled("inference_mode", True)
    old_pid = w.engine.pid
    seen = []
    w.runProgress.connect(lambda p: seen.append(p.phase))
    with qtbot.waitSignal(w.runStarted):
        w.run()
    qtbot.waitUntil(lambda: "size" in seen, timeout=RUN_TIMEOUT_MS)  # then the hanging call
    said = []
    w.runCancelled.connect(lambda: said.append(w.phase.text()))
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):  # re-opened
        with qtbot.waitSignal(w.runCancelled, timeout=RUN_TIMEOUT_MS):
            qtbot.mouseClick(w.optimize.cancel_button, Qt.MouseButton.LeftButton)
    assert w.engine.pid != old_pid
    assert w.history == []
    assert said == ["Cancelled: nothing was kept (the engine was restarted to stop it)."]
    assert any("restarted to stop the run of inference_mode" in t
               for t in w.warnings_button.warnings)


def test_gui_process_never_imports_torch(tmp_path):
    """The app's start-up, an example opened and a run, in a subprocess: no torch there."""
    code = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QEventLoop, QTimer
        from PySide6.QtWidgets import QApplication
        from quantgui.gui.main_window import MainWindow
        app = QApplication([])
        w = MainWindow(run_overrides=dict(time_budget_s=0.2, min_rounds=4, max_rounds=20,
                                          warmup=1, eval_limit=2))
        w.show()
        loop = QEventLoop()
        w.modelLoaded.connect(lambda _m: loop.quit())
        w.modelFailed.connect(lambda m: sys.exit("open failed: " + m))
        QTimer.singleShot(120_000, lambda: sys.exit("timed out"))
        w.open_source(None)
        loop.exec()
        QTimer.singleShot(0, lambda: w.set_technique_enabled("channels_last", True) or w.run())
        w.runFinished.connect(lambda _r: loop.quit())
        w.runFailed.connect(lambda m: sys.exit("run failed: " + m))
        loop.exec()
        print("runs", len(w.history), "torch" in sys.modules, flush=True)
        w.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "runs 1 False" in proc.stdout


@pytest.mark.perf
def test_cancel_inside_torch_compile_shows_cancelled_within_one_second(window, qtbot):
    """The apply step of torch.compile cannot check for cancel: the UI still says "cancelled"
    within 1 s (the engine is killed and restarted when it has not stopped by then)."""
    import time

    from quantgui.core import Recipe
    w = window
    w.set_recipe(Recipe.of("compile"))
    w.run_overrides.update(time_budget_s=20.0, max_rounds=100_000)
    seen = []
    w.runProgress.connect(lambda p: seen.append(p.phase))
    with qtbot.waitSignal(w.runStarted):
        w.run()
    qtbot.waitUntil(lambda: "apply" in seen, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(w.runCancelled, timeout=10_000):
        t0 = time.perf_counter()
        qtbot.mouseClick(w.optimize.cancel_button, Qt.MouseButton.LeftButton)
    elapsed = time.perf_counter() - t0
    assert elapsed < 1.0, f"cancel took {elapsed:.2f} s"
    assert w.phase.text().startswith("Cancelled: nothing was kept")
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)
