"""The Sweep view driven through its widgets: Tools > Sweep…, Run, points streaming into the
table and plots, Cancel keeping the points, the export dialog writing JSON."""

import json

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from quantgui.core.results.sweep import SweepResult
from tests.gui.cluster_helpers import enter_address, record_requests

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


def test_cluster_setting_is_kept_and_reaches_the_engine_request(make_window, qtbot,
                                                                qsettings, monkeypatch):
    from PySide6.QtWidgets import QComboBox, QLineEdit
    window = make_window()
    with qtbot.waitSignal(window.modelLoaded, timeout=120_000):
        window.open_source(None)
    qtbot.waitUntil(lambda: not window.engine.busy, timeout=5000)
    view = _open_sweep(window)
    combo = view.findChild(QComboBox, "sweepCluster")
    address = view.findChild(QLineEdit, "sweepClusterAddress")
    assert combo.currentText() == "This machine" and not address.isVisible()
    combo.setCurrentIndex(combo.findText("Ray: address"))
    assert address.isVisible()
    qtbot.keyClicks(address, "nohost")
    qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    assert "Cluster address: HOST:PORT" in view.status.text() and not window.engine.busy
    enter_address(qtbot, address, "127.0.0.2:1")  # nothing listens there
    assert qsettings.value("sweep/cluster") == "127.0.0.2:1"
    sent = record_requests(window, monkeypatch)
    with qtbot.waitSignal(view.failed, timeout=60_000) as failed:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    method, params = sent[0]
    assert method == "sweep" and params["cluster"] == "127.0.0.2:1"
    assert params["model"]["source"] == window.loaded.info.source  # each node opens it itself
    assert "nothing answers at 127.0.0.2:1" in failed.args[0] and "\n" not in failed.args[0]
    assert view.status.text().startswith("Sweep failed: ") and view.run_button.isEnabled()
    # A new window on the same settings starts with the address chosen.
    again = make_window().sweep_view
    assert again.cluster.combo.currentText() == "Ray: address"
    assert again.cluster.address.text() == "127.0.0.2:1"
    assert again.cluster.value() == "127.0.0.2:1"


def test_profile_bar_chart_and_report_of_a_real_sweep(window, qtbot, tmp_path):
    from quantgui.gui.profile_chart import TOP
    view = _open_sweep(window)
    view.batches.setText("1,4")
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    result = done.args[0]
    rect = view.table.visualItemRect(view.table.item(1, 0))  # the batch-4 point
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    chart = view.profile
    assert chart.profile_button.isEnabled()
    with qtbot.waitSignal(chart.profiled, timeout=RUN_TIMEOUT_MS) as profiled:
        qtbot.mouseClick(chart.profile_button, Qt.MouseButton.LeftButton)
        assert chart.cancel_button.isEnabled() and not view.run_button.isEnabled()
    profile = profiled.args[0]
    assert (profile.recipe, profile.batch, profile.threads) == (QUICK, 4, 1)
    bars = profile.bars(TOP)
    assert len(bars) >= 3  # the MLP's layers and the time outside them
    widths = lambda item: [float(w) for w in item.opts["width"]]  # noqa: E731
    assert widths(chart.before_item) == [b for _, b, _ in bars]
    assert widths(chart.after_item) == [a for _, _, a in bars]
    ticks = chart.plot.getAxis("left")._tickLevels[0]
    assert [label for _, label in sorted(ticks, reverse=True)] == [n for n, _, _ in bars]
    assert "batch 4" in chart.title.text() and view.run_button.isEnabled()

    qtbot.mouseClick(view.report_button, Qt.MouseButton.LeftButton)
    dialog = view.findChild(QFileDialog, "sweepReportDialog")
    assert dialog is not None and dialog.isVisible()
    folder = tmp_path / "sweep-report"
    dialog.selectFile(str(folder))
    with qtbot.waitSignal(view.reported, timeout=30_000):
        dialog.accept()
    page = (folder / "report.html").read_text()
    for p in result.points:
        assert f"<td class=num>{p.before.median_ms:.3f}</td>" in page
    for c in result.crossovers:
        assert c.text in page
    assert page.count("data:image/png;base64,") == 3  # latency, throughput, profile
    assert f"Per-layer profile: {QUICK}, batch 4" in page
    assert (folder / "report.md").exists() and (folder / "sweep.json").exists()
    assert "Report written" in view.status.text()
