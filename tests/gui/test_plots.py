"""The plots package: live progress, final results, history/Pareto, themes and exports."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette

from quantgui.core import RunResult
from quantgui.core.progress import Progress
from quantgui.gui.plots import HistoryView, ResultsView, pareto_front
from quantgui.gui.plots.history_view import COL
from quantgui.gui.plots.size_plot import ratio_text


def shown_result(real_result, labels=True, steps=("dynamic_int8",)):
    """A real run (dynamic INT8 on the digits MLP) in the state these tests draw: its verdict
    "faster" and its timing flagged noisy (a copy: the typed fields are set, nothing invented)."""
    r = real_result("digits-mlp", *steps, labels=labels)
    r.verdict.label = "faster"
    r.timing.noisy, r.timing.noisy_reason = True, "frequency changed"
    return r


def variant(base, after_ms, acc_after=None, size_after=None, label="faster", cosine=None):
    """A copy of `base` as if its optimized model measured these (the original at 2 ms and
    96.8%, so the Pareto front is the same on every machine)."""
    r = base.copy()
    before, after = r.before.latency, r.after.latency
    for lat, ms in ((before, 2.0), (after, after_ms)):
        scale = ms / lat.median_ms
        lat.median_ms, lat.p10_ms, lat.p90_ms, lat.mean_ms = (
            x * scale for x in (lat.median_ms, lat.p10_ms, lat.p90_ms, lat.mean_ms))
        lat.values_ms = [v * scale for v in lat.values_ms]
    r.timing.speedup = 2.0 / after_ms
    r.timing.ci95 = (r.timing.speedup * 0.95, r.timing.speedup * 1.05)
    if r.before.accuracy is not None:
        r.before.accuracy, r.after.accuracy = 0.968, acc_after
    if size_after is not None:
        r.after.size_bytes = size_after
        r.size_ratio = size_after / r.before.size_bytes
    if cosine is not None:
        r.fidelity.cosine = cosine
    r.verdict.label = label
    return r


def progress_events(seed=1):
    """What a QAT run reports, in order: train, calibrate, size, interleaved timing, evaluate."""
    rng = np.random.default_rng(seed)
    events = [Progress("apply", values={"step": "qat_int8"})]
    events += [Progress("train", i, 30, values={"loss": 2.0 * math.exp(-i / 10), "epoch": 1 + i // 15})
               for i in range(30)]
    events += [Progress("calibrate", i, 8) for i in range(1, 9)]
    events.append(Progress("size", values={"before_bytes": 4_200_000, "after_bytes": 1_100_000}))
    for i in range(25):
        for which, ms in (("before", 2.0), ("after", 0.8)):
            events.append(Progress("time", i, 50, values={"which": which,
                                                            "latency_ms": float(rng.normal(ms, 0.05))}))
    for which in ("before", "after"):
        events += [Progress("evaluate", b, 10, values={"which": which, "accuracy": 0.95 + 0.001 * b,
                                                        "agreement": 0.99})
                   for b in range(1, 11)]
    return events


@pytest.fixture
def view(qtbot):
    v = ResultsView()
    qtbot.addWidget(v)
    v.resize(1000, 650)
    v.show()
    yield v
    v.clear()


@pytest.fixture
def history(qtbot):
    h = HistoryView()
    qtbot.addWidget(h)
    h.resize(1100, 320)
    h.show()
    return h


def _active_timers(widget):
    return [t for t in widget.findChildren(QTimer) if t.isActive()]


# -- Pareto (pure logic) ----------------------------------------------------------------------
def test_pareto_front_pure():
    pts = [(1.0, 0.90), (2.0, 0.95), (1.5, 0.80), (3.0, 0.95), (0.5, 0.70), (2.5, 0.99)]
    # (1.5, .80) is beaten by (1.0, .90); (3.0, .95) by (2.0, .95); the rest trade off.
    assert pareto_front(pts) == [4, 0, 1, 5]
    assert pareto_front([]) == []
    assert pareto_front([(1.0, 0.5)]) == [0]
    # Identical points do not dominate each other; missing/NaN coordinates take no part.
    assert pareto_front([(1.0, 0.9), (1.0, 0.9), (None, 1.0), (0.1, float("nan"))]) == [0, 1]
    # Same latency, better quality wins; same quality, lower latency wins.
    assert pareto_front([(1.0, 0.8), (1.0, 0.9), (0.9, 0.9)]) == [2]


def test_ratio_text():
    assert ratio_text(1_100_000 / 4_200_000) == "0.26x (3.8x smaller)"
    assert ratio_text(1.2) == "1.20x (1.2x larger)"
    assert ratio_text(1.0) == "1.00x (same size)"
    assert ratio_text(None) == ""


# -- ResultsView ------------------------------------------------------------------------------
def test_live_progress_then_result(view, qtbot, real_result):
    assert set(view.plots()) == {"size", "latency", "accuracy"}
    assert view.has_data() == {"size": False, "latency": False, "accuracy": False}
    view.start_run("qat_int8")
    assert view.redraw_timer.isActive()
    for p in progress_events():
        view.on_progress(p)
    # Buffered, not drawn per event: nothing reached the plot items yet.
    assert view.latency_plot.samples["before"].getData()[1] is None or \
        len(view.latency_plot.samples["before"].getData()[1]) == 0
    qtbot.waitUntil(lambda: all(view.has_data().values()), timeout=3000)
    assert len(view.latency_plot.samples["after"].getData()[1]) == 25
    # The strip keeps measurement order although many events arrive per redraw.
    assert list(view.latency_plot.samples["before"].getData()[0][:3]) == [0, 2, 4]
    assert list(view.latency_plot.samples["after"].getData()[0][:3]) == [1, 3, 5]
    assert view.loss_plot.has_data() and view.loss_plot.isVisible()
    assert view.size_plot.ratio_label_text() == "0.26x (3.8x smaller)"
    assert "evaluate" in view.status.text() or "evaluating" in view.status.text()

    result = shown_result(real_result)
    view.show_result(result)
    assert not view.redraw_timer.isActive()
    assert not _active_timers(view)
    assert view.has_data() == {"size": True, "latency": True, "accuracy": True}
    assert result.size_ratio < 0.3  # INT8 weights
    assert view.size_plot.ratio_label_text() == ratio_text(result.size_ratio)
    verdict = view.latency_plot.verdict_text()
    assert f"{result.timing.speedup:.2f}x" in verdict
    assert "95% CI" in verdict and "faster" in verdict and "noisy" in verdict
    before, after = result.before.accuracy, result.after.accuracy
    assert f"{before * 100:.1f}% → {after * 100:.1f}%" in view.accuracy_plot.subtitle_text()
    assert f"cosine {result.fidelity.cosine:.4f}" in view.accuracy_plot.subtitle_text()
    assert view.loss_plot.has_data()  # the loss of this run stays with its result
    samples = view.latency_plot.samples["before"].getData()[1]  # a dot per timed sample
    assert len(samples) == result.before.latency.samples == len(result.before.latency.values_ms)
    # Late progress after the result changes nothing.
    view.on_progress(Progress("time", values={"which": "after", "latency_ms": 99.0}))
    assert not view.redraw_timer.isActive()
    assert view.result() is result


def test_clear_stops_timer_and_empties(view):
    view.start_run("x")
    view.on_progress(Progress("size", values={"before_bytes": 10, "after_bytes": 5}))
    assert view.redraw_timer.isActive()
    view.clear()
    assert not view.redraw_timer.isActive()
    assert not _active_timers(view)
    assert not any(view.has_data().values())
    assert view.size_plot.ratio_label_text() == ""


def test_timer_stops_itself_when_run_goes_quiet(view, qtbot):
    view.start_run("x")
    view.on_progress(Progress("calibrate", 1, 4))
    qtbot.waitUntil(lambda: not view.redraw_timer.isActive(), timeout=5000)
    view.on_progress(Progress("calibrate", 2, 4))
    assert view.redraw_timer.isActive()
    view.stop_run("cancelled")
    assert not view.redraw_timer.isActive()
    assert view.status.text() == "cancelled"


def test_results_read_from_damaged_files_do_not_crash(view, real_result):
    # What RunResult.from_json makes of JSON a file lost parts of: unknown, never garbage.
    view.show_result(RunResult.from_json({}))
    assert view.has_data() == {"size": False, "latency": False, "accuracy": False}
    data = real_result("digits-mlp", "dynamic_int8").to_json()
    del data["after"]["latency_ms"]
    data["speedup"].update(median=1.5, ci95=None)
    data.update(verdict={}, fidelity=None, steps="not a list", size_ratio="bad")
    partial = RunResult.from_json(data)
    view.show_result(partial)
    assert "1.50x" in view.latency_plot.verdict_text()
    assert not view.has_data()["latency"]
    identical = real_result("digits-mlp", "inference_mode")  # outputs equal the original's
    assert identical.fidelity.sqnr_db == math.inf  # JSON wrote None; from_json read inf
    view.show_result(identical)
    assert "SQNR" not in view.accuracy_plot.subtitle_text()  # infinity is not a number shown
    view.start_run("")
    for odd in (Progress("time", values={"which": "sideways", "latency_ms": 1.0}),
                Progress("time", values={"which": "before", "latency_ms": "n/a"}),
                Progress("evaluate", values={"which": "after", "accuracy": None, "agreement": None}),
                Progress("train", values={"loss": float("nan")}), Progress("mystery", 3, 0),
                Progress("size", values={"before_bytes": None}), object()):
        view.on_progress(odd)
    view._flush()
    without = shown_result(real_result)
    without.before.latency.values_ms, without.after.latency.values_ms = [], []
    view.show_result(without)
    assert view.has_data()["latency"]
    # Without samples: medians with p10-p90 error bars only.
    assert len(view.latency_plot.error_bars.opts["x"]) == 2
    assert view.latency_plot.samples["before"].getData()[1] is None or \
        len(view.latency_plot.samples["before"].getData()[1]) == 0


def test_no_labels_shows_fidelity(view, real_result):
    result = real_result("digits-mlp", "dynamic_int8", labels=False)
    result.verdict.label = "not faster"
    view.show_result(result)
    assert view.has_data()["accuracy"]
    text = view.accuracy_plot.center_text.toPlainText()
    f = result.fidelity
    assert f"cosine {f.cosine:.4f}" in text and f"SQNR {f.sqnr_db:.1f} dB" in text
    assert f"agreement {f.top1_agreement * 100:.1f}%" in text
    assert "not faster" in view.latency_plot.verdict_text()
    assert not view.loss_plot.isVisible()  # a stored result without a loss curve


def test_exports(view, tmp_path, real_result):
    view.start_run("r")
    for p in progress_events():
        view.on_progress(p)
    view.show_result(shown_result(real_result))
    pngs = view.export_png(tmp_path / "out.png")
    svgs = view.export_svg(tmp_path / "out.svg")
    names = {p.name for p in pngs}
    assert {"out-size.png", "out-latency.png", "out-accuracy.png", "out-loss.png"} == names
    for p in pngs:
        img = QImage(str(p))
        assert not img.isNull() and img.width() > 200 and img.height() > 100
    for p in svgs:
        text = p.read_text(encoding="utf-8")
        assert "<svg" in text
        assert ET.fromstring(text).tag.endswith("svg")
    one = view.export_png(tmp_path / "only.png", which="latency")
    assert [p.name for p in one] == ["only.png"] and one[0].stat().st_size > 0
    assert view.export_svg(tmp_path / "acc.svg", which="accuracy")[0].stat().st_size > 0
    with pytest.raises(ValueError):
        view.export_png(tmp_path / "x.png", which="nope")


def test_export_of_a_never_shown_view(qtbot, tmp_path, real_result):
    v = ResultsView()
    qtbot.addWidget(v)
    v.show_result(shown_result(real_result))
    (path,) = v.export_svg(tmp_path / "s.svg", which="size")
    assert "<svg" in path.read_text(encoding="utf-8")
    assert not v.isVisible()  # shown only for the export


def test_palette_drives_theme(view):
    plot = view.size_plot
    assert not plot.theme.dark  # offscreen: light
    assert plot.backgroundBrush().color().lightness() > 128
    dark = QPalette(view.palette())
    dark.setColor(QPalette.ColorRole.Base, QColor("#1e1e1e"))
    dark.setColor(QPalette.ColorRole.Text, QColor("#e6e6e6"))
    view.setPalette(dark)
    assert plot.theme.dark and view.latency_plot.theme.dark
    assert plot.backgroundBrush().color().lightness() < 128
    # A colour-scheme change re-reads the palette without crashing.
    QGuiApplication.styleHints().colorSchemeChanged.emit(QGuiApplication.styleHints().colorScheme())
    assert plot.theme.dark


def test_tooltips(view, history):
    for plot in (*view.plots().values(), view.loss_plot, history.plot):
        assert plot.toolTip()
    assert view.status.toolTip() and history.table.toolTip()
    for col in range(history.table.columnCount()):
        assert history.table.horizontalHeaderItem(col).toolTip()


# -- HistoryView ------------------------------------------------------------------------------
def _variants(base):
    return [  # (after latency ms, accuracy, size bytes, label)
        variant(base, 0.8, 0.960, 1_100_000),
        variant(base, 1.2, 0.968, 2_100_000),
        variant(base, 2.3, 0.930, 700_000, label="slower"),
        variant(base, 0.7, 0.955, 1_150_000),
        variant(base, 0.9, 0.950, 1_000_000),
    ]


def test_history_table_pareto_and_selection(history, qtbot, real_result):
    results = _variants(real_result("digits-mlp", "dynamic_int8"))
    recipes = ["dynamic_int8", "bf16", "weight_only_int4", "dynamic_int8 + compile", "fp16"]
    for n, (r, text) in enumerate(zip(results, recipes), start=1):
        history.add(r, text)
        assert history.table.rowCount() == n
    assert history.results() == results
    assert history.quality_metric() == "accuracy"
    # #5 (0.9 ms, 95.0%) is beaten by #1 (0.8 ms, 96.0%); #3 is slow and worse.
    assert history.pareto_indices() == [3, 0, 1]
    assert history.plot.points.data.size == 5
    # Each point's tooltip names its recipe.
    tips = [history.plot.points.opts["tip"](x=0, y=0, data=pt.data())
            for pt in history.plot.points.points()]
    assert any("weight_only_int4" in t for t in tips)

    # The row's own RunResult is what the selection carries.
    with qtbot.waitSignal(history.variantSelected, timeout=1000,
                          check_params_cb=lambda r: r is results[2]):
        history.table.selectRow(2)
    # Sorting by a column keeps rows mapped to their own results.
    history.table.sortByColumn(COL["Latency"], Qt.SortOrder.AscendingOrder)
    with qtbot.waitSignal(history.variantSelected, timeout=1000,
                          check_params_cb=lambda r: r is results[3]):
        history.table.selectRow(0)  # the fastest variant, #4


def test_history_clear_load_and_no_labels(history, real_result):
    history.add(real_result("digits-mlp", "dynamic_int8"), "")
    assert history.table.item(0, COL["Recipe"]).text() == "dynamic_int8"  # from result.recipe
    history.clear()
    assert history.table.rowCount() == 0 and history.results() == []
    base = real_result("digits-mlp", "dynamic_int8", labels=False)
    broken = RunResult.from_json({"source": base.source})  # a file that kept only its model
    entries = [(variant(base, 0.8, cosine=0.999), "a"),
               (variant(base, 0.9, cosine=0.9999), "b"),
               (variant(base, 1.0, cosine=0.99), "c"),
               (broken, "broken")]
    history.load(entries)
    assert history.table.rowCount() == 4
    assert history.quality_metric() == "cosine"
    assert history.pareto_indices() == [0, 1]
    assert "1 without cosine" in history.plot.subtitle_text()


def test_view_survives_deletion_before_scheme_change(qtbot):
    """Views listen to the application-wide scheme signal; a deleted view must not be called."""
    import shiboken6
    from PySide6.QtCore import QCoreApplication, QEvent
    v, h = ResultsView(), HistoryView()
    v.deleteLater()
    h.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    assert not shiboken6.isValid(v) and not shiboken6.isValid(h)
    QGuiApplication.styleHints().colorSchemeChanged.emit(QGuiApplication.styleHints().colorScheme())


# -- painting in turns (issue 10: the event loop answers between the plots' paints) -----------
def test_a_result_paints_its_plots_in_turns(view, qtbot, real_result):
    """The size plot paints first; the latency and accuracy plots each in a later turn of the
    event loop (a 0 ms timer ticks between them), not all in one long pass."""
    from PySide6.QtCore import QEvent, QObject

    from quantgui.gui.plots import turns
    order = []

    class Paints(QObject):
        def eventFilter(self, obj, event):
            if event.type() == QEvent.Type.Paint:
                order.append(obj.parent().name)  # the viewport's plot
            return False
    paints = Paints()
    for plot in view.plots().values():
        plot.viewport().installEventFilter(paints)
    tick = QTimer()
    tick.setInterval(0)
    tick.timeout.connect(lambda: order.append("tick"))
    turns.release_all()  # (plots of earlier tests)
    view.show_result(shown_result(real_result))
    assert turns.held() == [view.latency_plot, view.accuracy_plot]
    order.clear()
    tick.start()
    qtbot.waitUntil(lambda: not turns.held() and "accuracy" in order)
    tick.stop()
    first = {name: order.index(name) for name in ("size", "latency", "accuracy")}
    assert first["size"] < first["latency"] < first["accuracy"]
    assert "tick" in order[first["size"]:first["latency"]]
    assert "tick" in order[first["latency"]:first["accuracy"]]


def test_a_grab_right_after_a_result_draws_every_plot(view, real_result):
    """A plot waiting for its turn would grab blank: grabbing releases it first."""
    from quantgui.gui.plots import turns
    turns.release_all()
    view.show_result(shown_result(real_result))
    assert view.latency_plot in turns.held()
    image = view.grab().toImage()
    assert turns.held() == []
    r = view.latency_plot.geometry()
    colours = {image.pixelColor(x, y).name() for x in range(r.left(), r.right(), 4)
               for y in range(r.top(), r.bottom(), 4)}
    assert len(colours) > 4  # axes, boxes and points, not one blank background
