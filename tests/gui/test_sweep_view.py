"""The Sweep view driven through its widgets: Tools > Sweep…, Run, points streaming into the
table and plots, Cancel keeping the points, the export dialog writing JSON."""

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from quantgui.core.results.sweep import SweepResult

RUN_TIMEOUT_MS = 120_000

QUICK = "dynamic_int8"


def _open_sweep(window):
    window.set_technique_enabled(QUICK, True)
    window.actions_by_name["sweep"].trigger()
    view = window.sweep_view
    assert view.dock.isVisible()
    assert [view.recipes.item(i).text() for i in range(view.recipes.count())] == [QUICK]
    assert view.recipes.item(0).checkState() == Qt.CheckState.Checked
    return view


def test_sweep_runs_streams_points_and_exports(window, qtbot, tmp_path):
    view = _open_sweep(window)
    view.batches.setText("1,4")
    view.threads.setText("1")
    streamed = []
    view.pointAdded.connect(streamed.append)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    result = done.args[0]
    assert [p.batch for p in result.points] == [1, 4] and not result.cancelled
    assert [p.to_json() for p in streamed] == [p.to_json() for p in result.points]
    assert view.table.rowCount() == 2 and view.table.item(1, 2).text() == "4"
    # one "original" line and one recipe line, in both plots
    assert len(view.latency_plot.getPlotItem().listDataItems()) == 2
    assert len(view.throughput_plot.getPlotItem().listDataItems()) == 2
    assert "recommended:" in view.crossover.text()
    assert view.json_button.isEnabled() and view.run_button.isEnabled()

    qtbot.mouseClick(view.json_button, Qt.MouseButton.LeftButton)
    dialog = view.findChild(QFileDialog, "sweepExportDialog")
    assert dialog is not None and dialog.isVisible()
    target = tmp_path / "sweep.json"
    dialog.selectFile(str(target))
    dialog.accept()
    qtbot.waitUntil(target.exists, timeout=5000)
    assert SweepResult.from_json(json.loads(target.read_text())).to_json() == result.to_json()


def test_sweep_cancel_keeps_the_points_measured(window, qtbot):
    view = _open_sweep(window)
    view.batches.setText("1,2,4,8,16,32,64")
    with qtbot.waitSignal(view.pointAdded, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    assert result.cancelled and 1 <= len(result.points) < 7
    assert view.table.rowCount() == len(result.points)
    assert "cancelled" in view.status.text() and view.run_button.isEnabled()


def test_sweep_refuses_bad_counts_without_running(window, qtbot):
    view = _open_sweep(window)
    view.batches.setText("1,x")
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert "Batch sizes" in view.status.text() and not window.engine.busy
