"""A log-scale axis whose labels do not run into each other.

pyqtgraph labels every minor tick of a log axis that spans about a decade (0.6 0.7 0.8 0.9 ...),
and on a 400 px plot they print as one string ("0.60.70.80.91"). Ticks stay where they are;
only those at 1, 2 and 5 times a power of ten keep their label.
"""

from __future__ import annotations

import math

import pyqtgraph as pg

LABELLED = (1, 2, 5)


def labelled(value: float) -> bool:
    """Whether a tick at `value` (the axis's own units, not its log) keeps its label."""
    if not value > 0 or not math.isfinite(value):
        return False
    mantissa = value / 10 ** math.floor(math.log10(value) + 1e-9)
    return any(abs(mantissa - m) < 1e-6 * m for m in LABELLED)


class LogAxis(pg.AxisItem):
    def logTickStrings(self, values, scale, spacing):
        strings = super().logTickStrings(values, scale, spacing)
        return [s if labelled(10 ** v * scale) else "" for v, s in zip(values, strings)]


def log_x_plot() -> pg.PlotWidget:
    """A PlotWidget with a log x axis (`LogAxis`)."""
    plot = pg.PlotWidget(axisItems={"bottom": LogAxis("bottom")})
    plot.setLogMode(x=True, y=False)
    return plot
