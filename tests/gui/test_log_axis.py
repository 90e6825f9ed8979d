"""The tune and sweep views' log x axis: labels only at 1, 2 and 5 times a power of ten, so
a decade of minor ticks does not print as one run-together string ("0.60.70.80.91")."""

import math

from quantgui.gui.plots.log_axis import LogAxis, labelled, log_x_plot


def test_only_one_two_five_keep_their_labels():
    assert [v for v in (0.05, 0.2, 0.5, 0.6, 0.9, 1, 2, 3, 4, 5, 7, 10, 20, 64, 100)
            if labelled(v)] == [0.05, 0.2, 0.5, 1, 2, 5, 10, 20, 100]
    assert not labelled(0) and not labelled(-1) and not labelled(math.nan)


def test_the_views_axis_blanks_the_crowded_minor_labels(qtbot):
    plot = log_x_plot()
    qtbot.addWidget(plot)
    axis = plot.getAxis("bottom")
    assert isinstance(axis, LogAxis) and axis.logMode
    values = [math.log10(v) for v in (0.5, 0.6, 0.7, 0.8, 0.9, 1, 2, 3, 4)]
    assert axis.tickStrings(values, 1.0, 0.1) == ["0.5", "", "", "", "", "1", "2", "", ""]
    # every tick the axis itself generates over the tune view's span: labels spaced out
    plot.setXRange(math.log10(0.4), math.log10(4), padding=0)
    plot.resize(400, 300)
    shown = [s for _, ticks in axis.tickValues(*axis.range, 400)
             for s in axis.tickStrings(ticks, 1.0, 0.1) if s]
    assert shown and all(float(s) in (0.5, 1, 2) for s in shown), shown
