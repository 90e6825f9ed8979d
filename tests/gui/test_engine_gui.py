"""The window with the real engine process: a crash (abort, exit, the process killed) or a
cancel the engine cannot answer in time restarts the engine, keeps the session history, says
what was running and why, and the next run works; the GUI process never imports torch."""

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from quantgui.gui.model_panel import DATA_NONE
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


def _pick(qtbot, combo, index):
    """Choose an entry of a combo box with the mouse: open its list, click the entry."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible, timeout=5000)
    rect = view.visualRect(combo.model().index(index, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=5000)


def _assert_no_labels(w, old_pid):
    assert w.engine.pid != old_pid and w.engine.labels_dropped
    assert not w.loaded.test.labeled                     # what the engine's re-open answered
    assert w.session.model is w.loaded
    assert w.data_chooser.mode() == DATA_NONE
    assert "unlabeled: fidelity only" in w.summary.fields["data"].text()
    assert w.dialog is None or not w.dialog.isVisible()  # no "Could not drop the labels"


def test_none_data_mode_survives_an_engine_restart(window, qtbot):
    """"None — fidelity only" chosen, and the engine killed before it answered (the request
    never reached it) and again once it had: each re-opened model has no labels."""
    w = window
    assert w.loaded.test.labeled
    old_pid = w.engine.pid
    # Killed in the same call as the choice: the drop_labels request is still in flight.
    def kill(_mode):
        os.kill(old_pid, signal.SIGKILL)
    w.data_chooser.chosen.connect(kill)
    with qtbot.waitSignal(w.engine.reopened, timeout=LOAD_TIMEOUT_MS):
        _pick(qtbot, w.data_chooser.combo, 3)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)
    w.data_chooser.chosen.disconnect(kill)
    _assert_no_labels(w, old_pid)
    assert "restarted" in w.warnings_button.toolTip()

    old_pid = w.engine.pid  # killed again while idle, the labels already dropped
    with qtbot.waitSignal(w.engine.reopened, timeout=LOAD_TIMEOUT_MS):
        os.kill(old_pid, signal.SIGKILL)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)
    _assert_no_labels(w, old_pid)

    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):  # back to the built-in data
        _pick(qtbot, w.data_chooser.combo, 0)
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)
    assert w.loaded.test.labeled and not w.engine.labels_dropped


def test_gui_process_never_imports_torch(tmp_path):
    """The app's start-up, an example opened, a run, the recipe saved and loaded again, the
    results exported as CSV and JSON, the plots as PNG and SVG, and the shape dialogs' input
    shapes read, in a subprocess whose import hook refuses torch (and says who asked): the GUI
    process never imports it, not even where a caller would swallow the ImportError."""
    code = textwrap.dedent("""
        import json, sys, traceback
        asked = []

        class NoTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "torchao", "transformers"):
                    where = [f"{f.filename}:{f.lineno}" for f in traceback.extract_stack()
                             if "quantgui" in f.filename]
                    asked.append((name, where[-4:]))
                    raise ImportError(f"the GUI process imported {name}")
                return None

        sys.meta_path.insert(0, NoTorch())
        from PySide6.QtCore import QEventLoop, QTimer
        from PySide6.QtWidgets import QApplication, QDialogButtonBox
        from quantgui.gui.example_dialog import ExampleInputDialog
        from quantgui.gui.main_window import MainWindow
        from quantgui.gui.model_dialogs import ArchitectureDialog
        out = sys.argv[1]
        app = QApplication([])
        w = MainWindow(run_overrides=dict(time_budget_s=0.2, min_rounds=4, max_rounds=20,
                                          warmup=1, eval_limit=2))
        w.resize(1024, 640)
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
        done = {"runs": len(w.history)}
        done["save_recipe"] = w.save_recipe(f"{out}/recipe.json")
        w.set_technique_enabled("channels_last", False)
        done["load_recipe"] = w.load_recipe(f"{out}/recipe.json")
        done["recipe"] = w.current_recipe().describe()
        done["csv"] = w.export_results(f"{out}/runs.csv")
        done["json"] = w.export_results(f"{out}/runs.json")
        done["png"] = str(w.results.export_png(f"{out}/plots.png"))
        done["svg"] = str(w.results.export_svg(f"{out}/plots.svg"))
        shapes = []
        for dialog in (ExampleInputDialog(w, "model.pt"), ArchitectureDialog(w, "model.pt")):
            if isinstance(dialog, ArchitectureDialog):
                dialog.arch.setText("net.py:Net")
            dialog.chosen.connect(lambda *a: shapes.append(repr(a)))
            for text in ("2x3", "2,-1"):
                dialog.shape.setText(text)
                dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
                shapes.append(dialog.error.text())
        done["shapes"] = shapes
        done["asked"] = asked
        done["torch"] = "torch" in sys.modules
        print("DONE " + json.dumps(done), flush=True)
        w.close()
    """)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_CONFIG_HOME=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = json.loads(proc.stdout.split("DONE ", 1)[1])
    assert done["asked"] == [] and done["torch"] is False, done["asked"]
    assert done["runs"] == 1
    assert done["save_recipe"] is True and done["load_recipe"] == []
    assert done["recipe"] == "channels_last"  # loaded back into the panels
    assert done["csv"] is True and done["json"] is True
    assert (tmp_path / "runs.csv").read_text().count("\n") == 2   # header + the run
    assert json.loads((tmp_path / "runs.json").read_text())["runs"][0]["recipe_text"]
    assert done["png"] and done["svg"] and list(tmp_path.glob("plots*.png"))
    example, arch = done["shapes"][:3], done["shapes"][3:]
    assert example[0] == "({'input_dtype': 'float32', 'input_shape': (2, 3)},)"
    assert example[2].startswith("Input shape: input shape '2,-1': every dimension must be")
    assert arch[0] == "('net.py:Net', {}, (2, 3))"
    assert arch[2] == example[2]


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
