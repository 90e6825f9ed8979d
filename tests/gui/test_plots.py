"""The plots package: live progress, final results, history/Pareto, themes and exports."""

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QImage, QPalette

from quantgui.core.progress import Progress
from quantgui.gui.plots import HistoryView, ResultsView, pareto_front
from quantgui.gui.plots.history_view import COL
from quantgui.gui.plots.size_plot import ratio_text


def _lat(samples):
    """LatencyStats.to_json(): "samples" is the count, "values" the per-sample ms."""
    return {"median": float(np.median(samples)), "p10": float(np.percentile(samples, 10)),
            "p90": float(np.percentile(samples, 90)), "mean": float(np.mean(samples)),
            "samples": len(samples), "values": [float(s) for s in samples]}


def make_result(after_ms=0.8, acc_after=0.962, size_after=1_100_000, label="faster",
                cosine=0.9993, labels=True, samples=True, seed=0):
    rng = np.random.default_rng(seed)
    sb = rng.normal(2.0, 0.1, 40).clip(0.1)
    sa = rng.normal(after_ms, 0.05, 40).clip(0.05)
    before, after = _lat(sb), _lat(sa)
    if not samples:
        for lat in (before, after):
            lat.pop("samples")
            lat.pop("values")
    speed = before["median"] / after["median"]
    return {
        "before": {"size_bytes": 4_200_000, "memory_bytes": 4_300_000, "latency_ms": before,
                   "accuracy": 0.968 if labels else None},
        "after": {"size_bytes": size_after, "memory_bytes": size_after + 100_000,
                  "latency_ms": after, "accuracy": acc_after if labels else None},
        "speedup": {"median": speed, "ci95": [speed * 0.95, speed * 1.05]},
        "size_ratio": size_after / 4_200_000,
        "fidelity": {"top1_agreement": 0.99, "cosine": cosine, "cosine_min": cosine - 0.01,
                     "max_abs_error": 0.1, "sqnr_db": 30.5},
        "verdict": {"label": label, "reasons": ["CI above 1"], "warnings": ["a warning"]},
        "noisy": True, "noisy_reason": "frequency changed",
        "steps": [{"name": "dynamic_int8", "params": {}, "notes": ["fbgemm"], "metrics": {},
                   "seconds": 0.3}],
        "environment": {}, "recipe": {"steps": [{"technique": "dynamic_int8"}]},
        "batch_size": 32, "threads": 2,
    }


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
def test_live_progress_then_result(view, qtbot):
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

    result = make_result()
    view.show_result(result)
    assert not view.redraw_timer.isActive()
    assert not _active_timers(view)
    assert view.has_data() == {"size": True, "latency": True, "accuracy": True}
    assert view.size_plot.ratio_label_text() == "0.26x (3.8x smaller)"
    verdict = view.latency_plot.verdict_text()
    assert f"{result['speedup']['median']:.2f}x" in verdict
    assert "95% CI" in verdict and "faster" in verdict and "noisy" in verdict
    assert "96.8% → 96.2%" in view.accuracy_plot.subtitle_text()
    assert "cosine" in view.accuracy_plot.subtitle_text()
    assert view.loss_plot.has_data()  # the loss of this run stays with its result
    assert len(view.latency_plot.samples["before"].getData()[1]) == 40  # dots from "values"
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


def test_missing_keys_do_not_crash(view):
    view.show_result({})
    assert view.has_data() == {"size": False, "latency": False, "accuracy": False}
    partial = {"before": {"latency_ms": {"median": 2.0}}, "after": {"size_bytes": None},
               "speedup": {"median": 1.5, "ci95": None}, "verdict": {}, "fidelity": None,
               "steps": "not a list", "size_ratio": "bad"}
    view.show_result(partial)
    assert "1.50x" in view.latency_plot.verdict_text()
    assert not view.has_data()["latency"]
    legacy = make_result()  # per-sample ms as a list under "samples" is drawn too
    for which in ("before", "after"):
        legacy[which]["latency_ms"]["samples"] = legacy[which]["latency_ms"].pop("values")
    legacy["fidelity"]["sqnr_db"] = None  # identical outputs: the engine writes None
    view.show_result(legacy)
    assert len(view.latency_plot.samples["after"].getData()[1]) == 40
    assert "SQNR" not in view.accuracy_plot.subtitle_text()
    view.show_result(None)  # type: ignore[arg-type]
    view.start_run("")
    for odd in (Progress("time", values={"which": "sideways", "latency_ms": 1.0}),
                Progress("time", values={"which": "before", "latency_ms": "n/a"}),
                Progress("evaluate", values={"which": "after", "accuracy": None, "agreement": None}),
                Progress("train", values={"loss": float("nan")}), Progress("mystery", 3, 0),
                Progress("size", values={"before_bytes": None}), object()):
        view.on_progress(odd)
    view._flush()
    view.show_result(make_result(samples=False))
    assert view.has_data()["latency"]
    # Without samples: medians with p10-p90 error bars only.
    assert len(view.latency_plot.error_bars.opts["x"]) == 2
    assert view.latency_plot.samples["before"].getData()[1] is None or \
        len(view.latency_plot.samples["before"].getData()[1]) == 0


def test_no_labels_shows_fidelity(view):
    view.show_result(make_result(labels=False, label="not faster"))
    assert view.has_data()["accuracy"]
    text = view.accuracy_plot.center_text.toPlainText()
    assert "cosine 0.9993" in text and "SQNR 30.5 dB" in text and "agreement 99.0%" in text
    assert "not faster" in view.latency_plot.verdict_text()
    assert not view.loss_plot.isVisible()  # a stored result without a loss curve


def test_exports(view, tmp_path):
    view.start_run("r")
    for p in progress_events():
        view.on_progress(p)
    view.show_result(make_result())
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


def test_export_of_a_never_shown_view(qtbot, tmp_path):
    v = ResultsView()
    qtbot.addWidget(v)
    v.show_result(make_result())
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
def _variants():
    return [  # (after latency ms, accuracy, size bytes, label, recipe)
        make_result(after_ms=0.8, acc_after=0.960, size_after=1_100_000, seed=1),
        make_result(after_ms=1.2, acc_after=0.968, size_after=2_100_000, seed=2),
        make_result(after_ms=2.3, acc_after=0.930, size_after=700_000, label="slower", seed=3),
        make_result(after_ms=0.7, acc_after=0.955, size_after=1_150_000, seed=4),
        make_result(after_ms=0.9, acc_after=0.950, size_after=1_000_000, seed=5),
    ]


def test_history_table_pareto_and_selection(history, qtbot):
    results = _variants()
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

    # Signal(dict) passes a copy (QVariantMap round trip): compare by value, not identity.
    with qtbot.waitSignal(history.variantSelected, timeout=1000,
                          check_params_cb=lambda r: r == results[2]):
        history.table.selectRow(2)
    # Sorting by a column keeps rows mapped to their own results.
    history.table.sortByColumn(COL["Latency"], Qt.SortOrder.AscendingOrder)
    with qtbot.waitSignal(history.variantSelected, timeout=1000,
                          check_params_cb=lambda r: r == results[3]):
        history.table.selectRow(0)  # the fastest variant, #4


def test_history_clear_load_and_no_labels(history):
    history.add(make_result(), "")
    assert history.table.item(0, COL["Recipe"]).text() == "dynamic_int8"  # from result["recipe"]
    history.clear()
    assert history.table.rowCount() == 0 and history.results() == []
    entries = [(make_result(labels=False, after_ms=0.8, cosine=0.999, seed=1), "a"),
               (make_result(labels=False, after_ms=0.9, cosine=0.9999, seed=2), "b"),
               (make_result(labels=False, after_ms=1.0, cosine=0.99, seed=3), "c"),
               ({}, "broken")]
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
