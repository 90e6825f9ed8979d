"""The Auto-tune view driven through its widgets against the real engine: Tools > Auto-tune…,
Start, trials streaming into the scatter with the best so far starred, Stop keeping the best so
far, "Use this recipe" loading it (with its budget) into the recipe panel."""

from PySide6.QtCore import Qt

from tests.gui.conftest import LOAD_TIMEOUT_MS, RUN_TIMEOUT_MS
from tests.gui.cluster_helpers import enter_address, record_requests


def _open_grad_slow(qtbot, w, tmp_path):
    """tests/tune_models.py's GradSlowNet: any recipe with inference_mode skips its waste, so
    the first candidate is faster on any machine and the best so far exists."""
    import torch

    from tests import tune_models
    weights = tmp_path / "weights.pt"
    torch.save(tune_models.build().state_dict(), weights)
    with qtbot.waitSignal(w.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        w.open_source(source=str(weights), arch=f"{tune_models.__file__}:GradSlowNet",
                      input_shape=(32, 256))
    qtbot.waitUntil(lambda: not w.engine.busy, timeout=LOAD_TIMEOUT_MS)


def test_tune_streams_trials_stop_keeps_the_best_and_use_loads_it(make_window, qtbot,
                                                                  tmp_path):
    w = make_window(threads=1, min_rounds=6, time_budget_s=0.5)  # enough rounds to decide
    _open_grad_slow(qtbot, w, tmp_path)
    w.actions_by_name["tune"].trigger()
    view = w.tune_view
    assert view is not None and view.dock.isVisible() and not view.use_button.isEnabled()
    view.budget.kind.setCurrentIndex(view.budget.kind.findText("min cosine"))
    view.budget.value.setValue(0.99)
    with qtbot.waitSignal(view.trialAdded, timeout=RUN_TIMEOUT_MS) as first:
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
        assert not view.start_button.isEnabled() and view.stop_button.isEnabled()
    assert first.args[0].stage == "candidate" and len(view.points()) >= 1
    # the first trial "faster" by its interval is starred as it lands (every candidate of
    # this model skips its waste: under heavy load one may still be inconclusive)
    qtbot.waitUntil(lambda: view.best_point is not None, timeout=RUN_TIMEOUT_MS)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    assert result.cancelled and result.stopped == "cancelled" and len(result.trials) >= 1
    assert result.best is not None and "inference_mode" in result.recipe.describe()
    assert result.budget.min_cosine == 0.99
    assert view.status.text().startswith("Stopped: ") and "best: " in view.status.text()
    assert result.message in view.explanation.toPlainText()
    assert view.use_button.isEnabled() and view.start_button.isEnabled()
    qtbot.mouseClick(view.use_button, Qt.MouseButton.LeftButton)
    assert [s.name for s in w.current_recipe().steps] == \
        [s.name for s in result.recipe.steps]
    assert view.status.text().startswith("Loaded into the recipe panel: ")


def _open_tune(window, qtbot):
    with qtbot.waitSignal(window.modelLoaded, timeout=LOAD_TIMEOUT_MS):
        window.open_source(None)  # the built-in example
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=LOAD_TIMEOUT_MS)
    window.actions_by_name["tune"].trigger()
    return window.tune_view


def test_cluster_setting_is_the_sweeps_reaches_the_request_and_fails_in_one_line(
        make_window, qtbot, qsettings, monkeypatch):
    """On an engine without the Ray extra (so no Ray starts and nothing is measured): the
    address is checked before anything is sent, kept in the one Cluster setting the Sweep view
    shows too, sent with the model's open parameters, and the engine's answer is one line."""
    from PySide6.QtWidgets import QComboBox, QLineEdit
    window = make_window(engine_patches={"no_ray": True})
    view = _open_tune(window, qtbot)
    combo = view.findChild(QComboBox, "tuneCluster")
    address = view.findChild(QLineEdit, "tuneClusterAddress")
    machine = view.findChild(QComboBox, "tuneMachine")
    assert combo.currentText() == "This machine" and not address.isVisible()
    assert not machine.isVisible()  # no cluster result to choose from
    combo.setCurrentIndex(combo.findText("Ray: address"))
    assert address.isVisible()
    qtbot.keyClicks(address, "nohost")
    qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    assert "Cluster address: HOST:PORT" in view.status.text() and not window.engine.busy
    enter_address(qtbot, address, "127.0.0.2:1")
    assert qsettings.value("sweep/cluster") == "127.0.0.2:1"  # the one Cluster setting
    sent = record_requests(window, monkeypatch)
    with qtbot.waitSignal(view.failed, timeout=60_000) as failed:
        qtbot.mouseClick(view.start_button, Qt.MouseButton.LeftButton)
    method, params = sent[0]
    assert method == "tune" and params["cluster"] == "127.0.0.2:1"
    assert params["model"]["source"] == window.loaded.info.source  # each node opens it itself
    message = failed.args[0]
    assert message.startswith("--cluster 127.0.0.2:1: Ray is not installed (")
    assert message.endswith('install it with pip install "quantgui[ray]"')
    assert "\n" not in message and view.status.text() == f"Auto-tune failed: {message}"
    assert view.start_button.isEnabled() and view.cluster.isEnabled()
    # The Sweep view of the same window shows the same choice.
    window.actions_by_name["sweep"].trigger()
    assert window.sweep_view.cluster.value() == "127.0.0.2:1"
