"""The Sensitivity view driven through its widgets: Tools > Layer sensitivity…, Measure, units
streaming into the sortable table and the bar chart, Cancel keeping the units measured, and
checked rows becoming the recipe step's skip list."""

from PySide6.QtCore import QPoint, QSize, Qt
from PySide6.QtWidgets import QApplication

from quantgui.gui.sensitivity_view import shown_units

RUN_TIMEOUT_MS = 120_000
#: weight_only_int8 converts the CNN's two Linear layers (no calibration, no engine timing)
UNITS = ["classifier.1", "classifier.3"]


def _open(window, fmt="weight_only_int8"):
    window.actions_by_name["sensitivity"].trigger()
    view = window.sensitivity_view
    assert view.dock.isVisible()
    view.samples = 32
    view.format.setCurrentText(fmt)
    return view


def _check(view, qtbot, row):
    item = view.table.item(row, 0)
    rect = view.table.visualItemRect(item)
    # the check box sits at the cell's left edge
    qtbot.mouseClick(view.table.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(rect.left() + 10, rect.center().y()))
    assert item.checkState() == Qt.CheckState.Checked


def _assert_fits_the_smallest_window(window, view, qtbot):
    """At 1024x640 the dock sits between the side docks: the status wraps whole, the table's
    seven columns fit without scrolling sideways, and a splitter sits between it and the
    chart (the table gets the larger part)."""
    window.resize(1024, 640)
    qtbot.waitUntil(lambda: window.size() == QSize(1024, 640))
    window.actions_by_name["sensitivity"].trigger()  # the dock back at its height
    QApplication.processEvents()
    status = view.status
    assert len(status.text()) > 100 and status.wordWrap()
    assert status.width() > 500  # the whole width, not a side column
    assert status.height() >= status.heightForWidth(status.width())  # every line shown
    assert view.table.horizontalScrollBar().maximum() == 0
    header = view.table.horizontalHeader()
    assert sum(header.sectionSize(c) for c in range(header.count())) \
        <= view.table.viewport().width()
    body = view.body
    assert body.orientation() == Qt.Orientation.Horizontal and body.count() == 2
    assert body.widget(0).isAncestorOf(view.table) and body.widget(1).isAncestorOf(view.chart)
    assert body.sizes()[0] > body.sizes()[1] > 150
    # a quality cell is one number; its tooltip has the rest
    cell = view.table.item(0, 5)
    assert len(cell.text()) <= 12 and cell.text() in cell.toolTip() and "95% CI" in cell.toolTip()


def test_sensitivity_measures_streams_sorts_and_keeps_checked_layers(window, qtbot):
    view = _open(window)
    streamed = []
    view.unitAdded.connect(streamed.append)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
        assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    report = done.args[0]
    assert [u.name for u in report.units] == UNITS and report.complete
    assert [u.to_json() for u in streamed] == [u.to_json() for u in report.units]
    assert sorted(shown_units(view)) == sorted(UNITS) and view.table.rowCount() == 2
    assert "weight_only_int8 on digits-cnn" in view.status.text()
    _assert_fits_the_smallest_window(window, view, qtbot)
    # two bar series: quality impact and time share, one bar per unit each
    bars = view.chart.getPlotItem().items
    assert len(bars) == 2 and all(len(b.opts["y"]) == 2 for b in bars)
    # sorting by a column: params share, largest first
    header = view.table.horizontalHeader()
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(2) + 5, header.height() // 2))
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton,
                     pos=QPoint(header.sectionViewportPosition(2) + 5, header.height() // 2))
    shares = {u.name: u.params_share for u in report.units}
    order = shown_units(view)
    assert [shares[n] for n in order] == sorted(shares.values(), reverse=True)
    # checked rows become the weight_only_int8 step's skip list
    assert not view.keep_button.isEnabled()
    _check(view, qtbot, 0)
    assert view.keep_button.isEnabled()
    with qtbot.waitSignal(window.optimize.recipeChanged, timeout=5000):
        qtbot.mouseClick(view.keep_button, Qt.MouseButton.LeftButton)
    step = {s.name: s for s in window.current_recipe().steps}["weight_only_int8"]
    assert step.params["skip"] == [order[0]]
    assert "Run the recipe to see the effect" in view.status.text()


def test_sensitivity_cancel_keeps_the_units_measured(window, qtbot):
    view = _open(window)
    view.use_cache = False  # a complete earlier run must not answer at once
    view.expand.setChecked(True)
    view.format.setCurrentText("static_int8")
    view.params = {"engine": "x86", "batches": 1}  # no engine timing, one calibration batch
    with qtbot.waitSignal(view.unitAdded, timeout=RUN_TIMEOUT_MS):
        qtbot.mouseClick(view.run_button, Qt.MouseButton.LeftButton)
    with qtbot.waitSignal(view.finished, timeout=RUN_TIMEOUT_MS) as done:
        qtbot.mouseClick(view.cancel_button, Qt.MouseButton.LeftButton)
    report = done.args[0]
    assert report.cancelled and 1 <= len(report.units) < 5
    assert view.table.rowCount() == len(report.units)
    assert view.status.text().startswith("Cancelled: ")
    assert view.run_button.isEnabled() and not view.cancel_button.isEnabled()
