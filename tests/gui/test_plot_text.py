"""What the plots write (issue 9, item 12): subtitles elided at word boundaries with the full
text in a tooltip, no axes on empty plots, percent axes with whole-percent ticks, a live x-axis
that fits the samples, latencies without scientific notation, every size group labelled."""

import numpy as np
import pytest
from PySide6.QtGui import QFont, QFontMetricsF, QImage, QPainter
from PySide6.QtWidgets import QApplication

from quantgui.core.progress import Progress
from quantgui.gui.plots import HistoryView, ResultsView
from quantgui.gui.plots.accuracy_plot import AccuracyPlot
from quantgui.gui.plots.base import elide_words, fmt_ms, model_name, sig3
from quantgui.gui.plots.latency_plot import LatencyPlot
from quantgui.gui.plots.size_plot import SizePlot

from quantgui.core import RunResult
from quantgui.gui.plots.size_plot import ratio_text
from tests.gui.test_plots import shown_result
from tests.gui.test_window_sizes import axis_label_shown


def shown(qtbot, plot, width, height=260):
    qtbot.addWidget(plot)
    plot.resize(width, height)
    plot.show()
    qtbot.waitUntil(lambda: plot.width() == width)
    return plot


def drawn_tick_labels(plot, axis="bottom"):
    ax = plot.getPlotItem().getAxis(axis)
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        specs = ax.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [text for _rect, _flags, text in specs[2]] if specs else []


def test_latency_formats():
    assert fmt_ms(1030.0) == "1.03 s"
    assert fmt_ms(12345.0) == "12.3 s"
    assert fmt_ms(140.2) == "140 ms"
    assert fmt_ms(12.34) == "12.3 ms"
    assert fmt_ms(0.5912) == "0.591 ms"
    assert fmt_ms(None) == "–"
    assert sig3(1030.0) == "1030" and sig3(0.000123) == "0.000123"
    assert model_name("example:digits-cnn") == "digits-cnn"
    assert model_name("/models/net.pt") == "net.pt" and model_name("/hf/bert/") == "bert"
    assert model_name("") == "(unknown model)"
    assert model_name("/x/evil\x1b[2J.pt") == "evil\\x1b[2J.pt"


@pytest.mark.parametrize("width", [150, 190, 230, 320, 700])
def test_subtitles_elide_at_word_boundaries(qtbot, width, real_result):
    plot = shown(qtbot, LatencyPlot(), width)
    result = shown_result(real_result)
    result.timing.noisy_reason = "the speedup's 95% confidence interval is 29% wide"
    plot.set_result(result)
    full = plot.subtitle_text().splitlines()
    lines = plot.shown_subtitle()
    assert len(lines) == len(full) == 3  # the verdict, the speed it rests on, the noise
    for line, whole in zip(lines, full):
        if line != whole:
            head = line.removesuffix("…")
            assert line.endswith("…") and whole.startswith(head)
            assert not whole[len(head)].isalnum(), (line, whole)  # cut between two words
    if lines != full:  # the whole text is one hover away
        assert plot.getPlotItem().titleLabel.toolTip() == "\n".join(full)
    # The title block fits the plot: nothing drawn past its edges.
    text = plot.getPlotItem().titleLabel.item
    assert text.document().idealWidth() <= width
    assert plot.getPlotItem().width() <= width


def test_elide_words_helper(qtbot):
    fmf = QFontMetricsF(QFont())
    text = "faster · speedup 1.84x (95% CI 1.71–1.97x)"
    assert elide_words(text, fmf, 1000) == text
    short = elide_words(text, fmf, fmf.horizontalAdvance("faster · speedup 1.84x (95%"))
    assert short == "faster · speedup 1.84x…"  # "(95%" does not fit with the ellipsis
    assert elide_words(text, fmf, fmf.horizontalAdvance("faster · x")) == "faster…"  # no "·"


def test_empty_plots_show_no_axes_and_say_so(qtbot):
    view = ResultsView()
    qtbot.addWidget(view)
    view.resize(900, 600)
    view.show()
    history = HistoryView()
    qtbot.addWidget(history)
    history.show()
    for plot in (*view.plots().values(), history.plot):
        item = plot.getPlotItem()
        assert plot.is_empty(), plot.name
        assert not item.getAxis("left").isVisible() and not item.getAxis("bottom").isVisible()
        assert plot.empty_message().startswith("no ") and plot.empty_message().endswith("yet")
        assert not plot.key_shown()
    view.show_result(RunResult.from_json({}))  # a result that measured nothing: no axes
    for plot in view.plots().values():
        assert plot.is_empty() and "not measured" in plot.empty_message() or plot.name == "size"
    view.start_run("x")
    view.on_progress(Progress("time", values={"which": "before", "latency_ms": 2.0}))
    view._flush()
    lat = view.latency_plot
    assert not lat.is_empty() and lat.getPlotItem().getAxis("left").isVisible()
    assert lat.key_shown()  # before/after colours named in the title while samples stream
    assert view.size_plot.is_empty()  # nothing measured there yet


def test_live_latency_axis_fits_the_samples(qtbot):
    plot = shown(qtbot, LatencyPlot(), 400)
    plot.add_samples([("before", 1030.0), ("after", 900.0)])
    (x0, x1), (y0, y1) = plot.getPlotItem().vb.viewRange()
    assert (x0, x1) == (-0.5, 1.5)
    assert y0 < 0 < 900 < 1030 < y1 < 1030 * 1.3
    text = plot.subtitle_text()
    assert "1.03 s / 900 ms" in text and "e+" not in text
    plot.add_samples([("before" if i % 2 else "after", 1000.0 + i) for i in range(38)])
    (x0, x1), _ = plot.getPlotItem().vb.viewRange()
    assert (x0, x1) == (-0.5, 39.5)
    ticks = plot.getPlotItem().getAxis("bottom").tickValues(x0, x1, 400)
    assert all(float(v).is_integer() for _spacing, values in ticks for v in values)
    plot.resize(190, 260)  # the narrowest a plot gets in a 1024x640 window
    qtbot.waitUntil(lambda: plot.width() == 190)
    assert axis_label_shown(plot, "bottom") and axis_label_shown(plot, "left")


def test_accuracy_axis_is_in_whole_percent(qtbot):
    plot = shown(qtbot, AccuracyPlot(), 400)
    for b in range(1, 6):
        plot.add_point("before", b, 0.955 + 0.001 * b, None)
        plot.add_point("after", b, 0.95 + 0.001 * b, None)
    plot.redraw_live()
    (x0, x1), (y0, y1) = plot.getPlotItem().vb.viewRange()
    assert (x0, x1) == (0.5, 5.5)
    assert 0 <= y0 < 95 and 96 < y1 <= 101 and y1 - y0 >= 4
    ticks = plot.getPlotItem().getAxis("left").tickValues(y0, y1, 200)
    major = ticks[0][1]
    assert major and all(float(v).is_integer() for v in major)  # 92, 94, 96... not 0.2-0.8
    assert plot.getPlotItem().getAxis("left").labelText == "accuracy (%)"
    # All at 100%: the axis stops just above 100, it does not run to 112%.
    plot.clear_data()
    for b in range(1, 4):
        plot.add_point("before", b, 1.0, None)
        plot.add_point("after", b, 1.0, None)
    plot.redraw_live()
    _, (y0, y1) = plot.getPlotItem().vb.viewRange()
    assert 95 <= y0 < 96 and 100 < y1 < 101


@pytest.mark.parametrize("width", [150, 200, 260, 400, 1200])
def test_every_size_group_is_labelled(qtbot, width, real_result):
    plot = shown(qtbot, SizePlot(), width)
    result = shown_result(real_result)
    plot.set_result(result)
    QApplication.processEvents()  # the axes lay out
    assert drawn_tick_labels(plot) == ["file size", "in memory"]
    assert plot.ratio_label_text() == ratio_text(result.size_ratio)
    assert "smaller" in plot.ratio_label_text()  # INT8 weights
    assert plot.getPlotItem().legend is None and plot.key_shown()


def test_final_latency_tooltip_has_no_scientific_notation(qtbot, real_result):
    plot = shown(qtbot, LatencyPlot(), 400)
    result = shown_result(real_result)
    for which, ms in (("before", 1034.0), ("after", 812.0)):
        lat = getattr(result, which).latency
        lat.median_ms, lat.p10_ms, lat.p90_ms = ms, ms * 0.9, ms * 1.1
        lat.values_ms = list(np.linspace(ms * 0.9, ms * 1.1, 5))
    plot.set_result(result)
    tip = plot.toolTip()
    assert "median 1.03 s" in tip and "median 812 ms" in tip and "e+" not in tip
